use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    lockbridge_runtime::service::main::<libcal_connector::Application>().await
}
