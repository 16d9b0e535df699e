//! The binary's optional demo catalogue: one New York library with rooms and a seated hall.

use crate::state::{NewSpace, SimState};

pub struct Demo {
    pub lid: u32,
    pub rooms_cid: u32,
    pub room_ids: Vec<u32>,
    pub hall_id: u32,
    pub seat_ids: Vec<u32>,
}

pub fn load(state: &SimState) -> Demo {
    let lid = state.add_location("Riverside Main Library", chrono_tz::America::New_York);
    let rooms_cid = state
        .add_category(lid, "Group Study Rooms")
        .expect("location just added");
    let room = |name: &str, capacity| {
        let space = NewSpace {
            name: name.to_owned(),
            capacity,
            bookable_as_whole: true,
        };
        state
            .add_space(rooms_cid, space)
            .expect("category just added")
    };
    let room_ids = vec![room("Study Room 101", 4), room("Study Room 102", 6)];
    let hall = NewSpace {
        name: "Quiet Reading Hall".to_owned(),
        capacity: 3,
        bookable_as_whole: false,
    };
    let hall_id = state
        .add_space(rooms_cid, hall)
        .expect("category just added");
    let seat_ids = ["Seat A1", "Seat A2", "Seat A3"]
        .into_iter()
        .map(|name| state.add_seat(hall_id, name).expect("per-seat space"))
        .collect();
    Demo {
        lid,
        rooms_cid,
        room_ids,
        hall_id,
        seat_ids,
    }
}
