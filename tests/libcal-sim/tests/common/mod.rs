//! Shared helpers: a started simulator with a small catalogue and a token.

#![allow(dead_code)] // each test binary uses a different subset

use chrono::{DateTime, Utc};
use libcal_sim::{NewBooking, NewRow, NewSpace, SimConfig, SimHandle, Simulator, Status};
use serde_json::Value;

pub struct Api {
    pub sim: SimHandle,
    pub http: reqwest::Client,
    pub token: String,
    pub lid: u32,
    pub cid: u32,
    pub room: u32,
    pub hall: u32,
    pub seat: u32,
}

impl Api {
    pub async fn start() -> Self {
        Self::start_with(SimConfig::default()).await
    }

    /// A New York location with one room (booked whole) and one hall of seats.
    pub async fn start_with(config: SimConfig) -> Self {
        let sim = Simulator::start(config).await.expect("simulator starts");
        let lid = sim.add_location("Main", chrono_tz::America::New_York);
        let cid = sim.add_category(lid, "Rooms").unwrap();
        let space = |name: &str, whole| NewSpace {
            name: name.to_owned(),
            capacity: 4,
            bookable_as_whole: whole,
        };
        let room = sim.add_space(cid, space("Room 1", true)).unwrap();
        let hall = sim.add_space(cid, space("Hall", false)).unwrap();
        let seat = sim.add_seat(hall, "Seat 1").unwrap();
        let http = reqwest::Client::new();
        let mut api = Self {
            sim,
            http,
            token: String::new(),
            lid,
            cid,
            room,
            hall,
            seat,
        };
        api.token = api.fetch_token().await;
        api
    }

    pub fn url(&self, path: &str) -> String {
        self.sim
            .base_url()
            .join(path.trim_start_matches('/'))
            .unwrap()
            .to_string()
    }

    pub async fn token_response(&self, id: &str, secret: &str) -> reqwest::Response {
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", id),
            ("client_secret", secret),
        ];
        self.http
            .post(self.url("1.1/oauth/token"))
            .form(&form)
            .send()
            .await
            .unwrap()
    }

    pub async fn fetch_token(&self) -> String {
        let config = self.sim.config();
        let response = self
            .token_response(&config.client_id, &config.client_secret)
            .await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_owned()
    }

    /// GET with the current token: (status, JSON body).
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let response = self
            .http
            .get(self.url(path))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }

    pub async fn ok(&self, path: &str) -> Vec<Value> {
        let (status, body) = self.get(path).await;
        assert_eq!(status, 200, "{path}: {body}");
        body.as_array().unwrap().clone()
    }

    pub fn book_room(&self, status: Status, from: &str, to: &str) -> String {
        self.sim
            .book(booking(status, vec![row(self.room, None, from, to)]))
            .unwrap()
            .book_id
    }
}

pub fn at(raw: &str) -> DateTime<Utc> {
    raw.parse().unwrap()
}

pub fn row(eid: u32, seat_id: Option<u32>, from: &str, to: &str) -> NewRow {
    NewRow {
        eid,
        seat_id,
        from: at(from),
        to: at(to),
    }
}

pub fn booking(status: Status, rows: Vec<NewRow>) -> NewBooking {
    NewBooking {
        first_name: "Ada".to_owned(),
        last_name: "Lovelace".to_owned(),
        email: "ada@example.edu".to_owned(),
        status,
        rows,
        remote: false,
    }
}
