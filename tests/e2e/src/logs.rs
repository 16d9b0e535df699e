//! Everything the in-process services log, kept in memory, so a test can read what they
//! wrote (the connector's poll lines, the booking in every line) and that no secret or PIN is.

use std::{
    io,
    sync::{Arc, Mutex},
};

use tracing_subscriber::{EnvFilter, fmt::MakeWriter};

#[derive(Clone, Default)]
pub struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl CapturedLogs {
    /// Installs the process's subscriber at `debug`, writing here (nextest runs each test in
    /// a process of its own). lapin and sqlx stay as quiet as the services keep them.
    pub fn install() -> Self {
        let logs = Self::default();
        tracing_subscriber::fmt()
            .with_env_filter(EnvFilter::new("debug,lapin=error,sqlx=warn"))
            .with_ansi(false)
            .with_writer(logs.clone())
            .try_init()
            .expect("no other subscriber in this test process");
        logs
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("logs")).into_owned()
    }

    /// The first line with every one of `needles`, waiting for it to be logged: work reaches
    /// what a test can see (an inbox, a table) a moment before the line that says it is done.
    pub async fn wait_for_line(&self, needles: &[&str], timeout: std::time::Duration) -> String {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let text = self.text();
            if let Some(line) = text
                .lines()
                .find(|line| needles.iter().all(|needle| line.contains(needle)))
            {
                return line.to_owned();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no line says {needles:?}:\n{text}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}

impl io::Write for CapturedLogs {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.lock().expect("logs").extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for CapturedLogs {
    type Writer = Self;

    fn make_writer(&'a self) -> Self {
        self.clone()
    }
}
