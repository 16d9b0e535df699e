use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    lockbridge_shared::service::main::<admin::Application>().await
}
