//! The admin binary's command line: with no subcommand it runs the service; `create-user`
//! adds a staff account (the first admin is made this way).

use std::{
    io::{BufRead, IsTerminal},
    process::ExitCode,
};

use clap::{Parser, Subcommand};
use lockbridge_runtime::{db, telemetry::error_chain};
use secrecy::SecretString;

use crate::{
    Settings,
    staff::{self, Email, Password, Role},
};

#[derive(Parser)]
#[command(name = "admin", about = "lockbridge's admin service and staff UI")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand)]
pub enum Command {
    /// Adds a staff account; the password is read from the terminal (not echoed), or from the
    /// first line of standard input when it is not a terminal.
    CreateUser {
        email: String,
        #[arg(long, value_enum)]
        role: Role,
    },
}

#[derive(Debug, thiserror::Error)]
enum CommandError {
    #[error(transparent)]
    Email(#[from] staff::accounts::EmailError),
    #[error(transparent)]
    Password(#[from] staff::accounts::PasswordError),
    #[error("the password cannot be read: {0}")]
    Read(#[source] std::io::Error),
    #[error("the two passwords typed differ")]
    Mismatch,
    #[error("{}", error_chain(.0))]
    Settings(#[from] lockbridge_runtime::configuration::ConfigurationError),
    #[error("{}", error_chain(.0))]
    Database(#[from] db::DatabaseError),
    #[error("{}", error_chain(.0))]
    Create(#[from] staff::CreateUserError),
}

pub async fn run(command: Command) -> ExitCode {
    let Command::CreateUser { email, role } = command;
    match create_user(&email, role).await {
        Ok(email) => {
            println!("Created the {} user {email}.", role.as_str());
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("admin create-user: {error}.");
            ExitCode::FAILURE
        }
    }
}

async fn create_user(email: &str, role: Role) -> Result<Email, CommandError> {
    // Checked before the password is asked for, and before any connection.
    let email: Email = email.parse()?;
    let password = Password::new(read_password()?)?;
    let settings = Settings::load()?;
    let pool = db::connect_and_migrate(&settings.database).await?;
    staff::create_user(&pool, &email, &password, role).await?;
    Ok(email)
}

fn read_password() -> Result<SecretString, CommandError> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ").map_err(CommandError::Read)?;
        let again = rpassword::prompt_password("Password again: ").map_err(CommandError::Read)?;
        if first != again {
            return Err(CommandError::Mismatch);
        }
        return Ok(SecretString::from(first));
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(CommandError::Read)?;
    Ok(SecretString::from(
        line.trim_end_matches(['\r', '\n']).to_owned(),
    ))
}
