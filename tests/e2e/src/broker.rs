use serde_json::json;
use uuid::Uuid;

/// A fresh RabbitMQ virtual host, created through the management API, so each test has its
/// own exchanges and queues under the contract's fixed names.
pub struct TestBroker {
    pub vhost: String,
    pub url: String,
    management: String,
    http: reqwest::Client,
}

fn management_url() -> String {
    std::env::var("LOCKBRIDGE_TEST_RABBITMQ_MANAGEMENT")
        .unwrap_or_else(|_| "http://127.0.0.1:15672".to_owned())
}

fn amqp_server() -> String {
    std::env::var("LOCKBRIDGE_TEST_AMQP")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672".to_owned())
}

impl TestBroker {
    pub async fn create() -> Self {
        let vhost = format!("lockbridge-test-{}", Uuid::new_v4().simple());
        let broker = Self {
            url: format!("{}/{vhost}", amqp_server()),
            vhost,
            management: management_url(),
            http: reqwest::Client::new(),
        };
        broker
            .put(&format!("vhosts/{}", broker.vhost), json!({}))
            .await;
        broker
            .put(
                &format!("permissions/{}/guest", broker.vhost),
                json!({"configure": ".*", "write": ".*", "read": ".*"}),
            )
            .await;
        broker
    }

    async fn put(&self, path: &str, body: serde_json::Value) {
        let response = self
            .http
            .put(format!("{}/api/{path}", self.management))
            .basic_auth("guest", Some("guest"))
            .json(&body)
            .send()
            .await
            .expect("RabbitMQ management API reachable (rabbitmq_management plugin enabled?)");
        assert!(
            response.status().is_success(),
            "PUT {path}: {}",
            response.status()
        );
    }

    /// GET from the management API, scoped to this virtual host (`queues`, `exchanges`, …).
    pub async fn get(&self, collection: &str) -> serde_json::Value {
        self.management_get(&format!("{collection}/{}", self.vhost))
            .await
    }

    /// One queue as the management API last sampled it (`messages`, `arguments`, …).
    pub async fn queue(&self, name: &str) -> serde_json::Value {
        self.management_get(&format!("queues/{}/{name}", self.vhost))
            .await
    }

    async fn management_get(&self, path: &str) -> serde_json::Value {
        self.http
            .get(format!("{}/api/{path}", self.management))
            .basic_auth("guest", Some("guest"))
            .send()
            .await
            .expect("management API reachable")
            .json()
            .await
            .expect("management API answers JSON")
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        // Best effort, without blocking the runtime: a leftover vhost only costs a little memory.
        let url = format!("{}/api/vhosts/{}", self.management, self.vhost);
        std::thread::spawn(move || {
            let _ = std::process::Command::new("curl")
                .args([
                    "-s",
                    "-o",
                    "/dev/null",
                    "-u",
                    "guest:guest",
                    "-X",
                    "DELETE",
                    &url,
                ])
                .status();
        });
    }
}

impl TestBroker {
    /// Closes every client connection to this virtual host, as a broker restart would.
    pub async fn close_connections(&self) -> usize {
        let connections = self
            .management_get(&format!("vhosts/{}/connections", self.vhost))
            .await;
        let names: Vec<String> = connections
            .as_array()
            .expect("connections array")
            .iter()
            .filter_map(|c| c["name"].as_str().map(str::to_owned))
            .collect();
        for name in &names {
            let encoded: String = url::form_urlencoded::byte_serialize(name.as_bytes()).collect();
            let response = self
                .http
                .delete(format!(
                    "{}/api/connections/{}",
                    self.management,
                    encoded.replace('+', "%20")
                ))
                .basic_auth("guest", Some("guest"))
                .send()
                .await
                .expect("management API reachable");
            assert!(
                response.status().is_success(),
                "close {name}: {}",
                response.status()
            );
        }
        names.len()
    }
}
