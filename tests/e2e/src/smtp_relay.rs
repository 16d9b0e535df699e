//! A scripted SMTP server on loopback, standing in for a relay that misbehaves: MailDev takes
//! everything, so refusals (a recipient unknown at RCPT, credentials refused at AUTH, relaying
//! denied) are played by this one. It is a real SMTP server over TCP, speaking just enough of
//! RFC 5321 for lettre: greeting, EHLO (with AUTH PLAIN LOGIN when scripted), AUTH, MAIL,
//! RCPT, DATA, RSET, NOOP, QUIT. The script can be changed while it runs, so a test can make
//! the relay recover; what it accepted is kept for the test to read.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::{TcpListener, TcpStream},
    task::JoinHandle,
};

const OK: &str = "250 2.0.0 OK";

/// How the relay answers. Replies are whole SMTP reply lines, e.g. `"535 5.7.8 Bad credentials"`.
#[derive(Debug, Clone, Default)]
pub struct Script {
    /// Advertise AUTH PLAIN LOGIN, and answer AUTH with `auth_reply`.
    pub auth: bool,
    /// Default `235 2.7.0 Authentication successful`.
    pub auth_reply: Option<String>,
    /// The RCPT reply for these addresses (lowercase); every other address is accepted.
    pub refuse_rcpt: HashMap<String, String>,
}

impl Script {
    /// Every RCPT for `address` is answered with `reply`.
    pub fn refusing(mut self, address: &str, reply: &str) -> Self {
        self.refuse_rcpt
            .insert(address.to_ascii_lowercase(), reply.to_owned());
        self
    }
}

/// One message the relay accepted.
#[derive(Debug, Clone)]
pub struct Received {
    pub from: String,
    /// The recipients it accepted.
    pub to: Vec<String>,
    /// The message as sent, dot-unstuffed.
    pub data: String,
}

impl Received {
    /// The `Subject` header, unfolded.
    pub fn subject(&self) -> String {
        let unfolded = self.data.replace("\r\n ", " ").replace("\r\n\t", " ");
        unfolded
            .lines()
            .take_while(|line| !line.is_empty())
            .find_map(|line| line.strip_prefix("Subject: "))
            .unwrap_or_default()
            .to_owned()
    }

    /// The message with quoted-printable soft breaks and escapes undone: what a reader sees
    /// of lettre's 7bit and quoted-printable parts (ours are ASCII).
    pub fn decoded(&self) -> String {
        let joined = self.data.replace("=\r\n", "");
        let mut out = Vec::with_capacity(joined.len());
        let bytes = joined.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok());
            match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
                (b'=', Some(byte)) => {
                    out.push(byte);
                    i += 3;
                }
                (byte, _) => {
                    out.push(byte);
                    i += 1;
                }
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

#[derive(Default)]
struct State {
    script: Script,
    received: Vec<Received>,
}

pub struct ScriptedRelay {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: JoinHandle<()>,
}

impl Drop for ScriptedRelay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ScriptedRelay {
    pub async fn start(script: Script) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a free port");
        let addr = listener.local_addr().expect("address");
        let state = Arc::new(Mutex::new(State {
            script,
            received: Vec::new(),
        }));
        let shared = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(session(stream, shared.clone()));
            }
        });
        Self { addr, state, task }
    }

    /// The URL for `smtp.url`, with credentials when `user` is given.
    pub fn url(&self, user: Option<&str>) -> String {
        match user {
            Some(user) => format!("smtp://{user}:secret@{}", self.addr),
            None => format!("smtp://{}", self.addr),
        }
    }

    /// Answers the next commands by `script`.
    pub fn set_script(&self, script: Script) {
        self.state.lock().unwrap().script = script;
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }

    /// The accepted messages addressed to `address`.
    pub fn received_by(&self, address: &str) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.to.iter().any(|to| to.eq_ignore_ascii_case(address)))
            .collect()
    }
}

/// One client connection, until QUIT or the client goes away.
async fn session(stream: TcpStream, state: Arc<Mutex<State>>) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    let mut reply = async |text: &str| {
        write
            .write_all(format!("{text}\r\n").as_bytes())
            .await
            .is_ok()
    };
    if !reply("220 scripted-relay ESMTP").await {
        return;
    }
    let script = || state.lock().unwrap().script.clone();
    let mut from = String::new();
    let mut to = Vec::new();
    while let Ok(Some(line)) = lines.next_line().await {
        let upper = line.to_ascii_uppercase();
        let verb = upper.split_whitespace().next().unwrap_or_default();
        let answer = match verb {
            "EHLO" | "HELO" => {
                if script().auth {
                    "250-scripted-relay\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME".to_owned()
                } else {
                    "250-scripted-relay\r\n250 8BITMIME".to_owned()
                }
            }
            "AUTH" => {
                // LOGIN asks for the user name and the password; PLAIN sends both at once.
                if upper.starts_with("AUTH LOGIN") {
                    for challenge in ["334 VXNlcm5hbWU6", "334 UGFzc3dvcmQ6"] {
                        if !reply(challenge).await
                            || !matches!(lines.next_line().await, Ok(Some(_)))
                        {
                            return;
                        }
                    }
                }
                script()
                    .auth_reply
                    .unwrap_or_else(|| "235 2.7.0 Authentication successful".to_owned())
            }
            "MAIL" => {
                from = address_in(&line);
                to.clear();
                OK.to_owned()
            }
            "RCPT" => {
                let address = address_in(&line);
                match script().refuse_rcpt.get(&address.to_ascii_lowercase()) {
                    Some(refusal) => refusal.clone(),
                    None => {
                        to.push(address);
                        "250 2.1.5 OK".to_owned()
                    }
                }
            }
            "DATA" => {
                if !reply("354 End data with <CR><LF>.<CR><LF>").await {
                    return;
                }
                let mut data = String::new();
                loop {
                    match lines.next_line().await {
                        Ok(Some(line)) if line == "." => break,
                        Ok(Some(line)) => {
                            data.push_str(line.strip_prefix('.').unwrap_or(&line));
                            data.push_str("\r\n");
                        }
                        _ => return,
                    }
                }
                state.lock().unwrap().received.push(Received {
                    from: std::mem::take(&mut from),
                    to: std::mem::take(&mut to),
                    data,
                });
                "250 2.0.0 OK queued".to_owned()
            }
            "RSET" => {
                from.clear();
                to.clear();
                OK.to_owned()
            }
            "NOOP" => OK.to_owned(),
            "QUIT" => {
                reply("221 2.0.0 Bye").await;
                return;
            }
            _ => "500 5.5.2 Command not recognized".to_owned(),
        };
        if !reply(&answer).await {
            return;
        }
    }
}

/// The address in `MAIL FROM:<a@b> SIZE=1` or `RCPT TO:<a@b>`.
fn address_in(line: &str) -> String {
    line.split_once('<')
        .and_then(|(_, rest)| rest.split_once('>'))
        .map_or_else(String::new, |(address, _)| address.to_owned())
}
