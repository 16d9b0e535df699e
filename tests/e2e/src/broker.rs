use std::time::Duration;

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

    /// Another RabbitMQ user, with every permission on this virtual host; deleted on drop.
    pub async fn create_user(&self) -> TestUser {
        let name = format!("lockbridge-test-{}", Uuid::new_v4().simple());
        let password = Uuid::new_v4().simple().to_string();
        self.put(
            &format!("users/{name}"),
            json!({"password": password, "tags": ""}),
        )
        .await;
        self.put(
            &format!("permissions/{}/{name}", self.vhost),
            json!({"configure": ".*", "write": ".*", "read": ".*"}),
        )
        .await;
        let server = amqp_server();
        let host = server
            .rsplit_once('@')
            .map_or(server.as_str(), |(_, host)| host);
        TestUser {
            url: format!("amqp://{name}:{password}@{host}/{}", self.vhost),
            name,
            management: self.management.clone(),
        }
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
        delete_soon(format!("{}/api/vhosts/{}", self.management, self.vhost));
    }
}

/// A RabbitMQ user of one test, with its own connection URL.
pub struct TestUser {
    pub name: String,
    pub url: String,
    management: String,
}

impl Drop for TestUser {
    fn drop(&mut self) {
        delete_soon(format!("{}/api/users/{}", self.management, self.name));
    }
}

/// Deletes through the management API, best effort and without blocking the runtime: a
/// leftover only costs a little memory.
fn delete_soon(url: String) {
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

impl TestBroker {
    /// Waits until at least `at_least` client connections to this virtual host are open, then
    /// closes them all at once, as a broker restart would, and returns how many were open.
    ///
    /// Asks `rabbitmqctl`, which sees the broker's live connections, rather than the
    /// management API, which lists a connection only once its statistics have been collected
    /// (seconds later, and later still on a loaded machine or a freshly enabled plugin).
    pub async fn close_connections(&self, at_least: usize, within: Duration) -> usize {
        let deadline = tokio::time::Instant::now() + within;
        let open = loop {
            let listed =
                rabbitmqctl(&["list_connections", "--quiet", "-p", &self.vhost, "pid"]).await;
            let open = listed
                .lines()
                .filter(|line| !line.trim().is_empty())
                .count();
            if open >= at_least || tokio::time::Instant::now() >= deadline {
                break open;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        rabbitmqctl(&[
            "close_all_connections",
            "--vhost",
            &self.vhost,
            "test: broker restart",
        ])
        .await;
        open
    }
}

async fn rabbitmqctl(args: &[&str]) -> String {
    let output = tokio::process::Command::new("rabbitmqctl")
        .args(args)
        .output()
        .await
        .expect("rabbitmqctl runs (the tests need the broker on this machine)");
    assert!(
        output.status.success(),
        "rabbitmqctl {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}
