//! Every intake request counted by what it asked and how it ended
//! (`lockbridge_intake_requests_total`), so a rise in refusals shows before upstream calls.

use axum::{
    extract::Request,
    http::{Method, StatusCode},
    middleware::Next,
    response::Response,
};

pub(crate) async fn count(request: Request, next: Next) -> Response {
    let operation = operation(request.method(), request.uri().path());
    let response = next.run(request).await;
    metrics::counter!(
        "lockbridge_intake_requests_total",
        "operation" => operation,
        "outcome" => outcome(response.status()),
    )
    .increment(1);
    response
}

fn operation(method: &Method, path: &str) -> &'static str {
    if !path.starts_with("/v1/bookings/") {
        return "catalogue";
    }
    match *method {
        Method::PUT => "put_booking",
        Method::DELETE => "cancel_booking",
        _ => "read_booking",
    }
}

fn outcome(status: StatusCode) -> &'static str {
    match status.as_u16() {
        200..=299 => "accepted",
        401 => "unauthorized",
        404 => "not_found",
        409 => "conflict",
        400..=499 => "invalid",
        _ => "unavailable",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_have_few_values() {
        assert_eq!(operation(&Method::PUT, "/v1/bookings/b-1"), "put_booking");
        assert_eq!(
            operation(&Method::DELETE, "/v1/bookings/b-1"),
            "cancel_booking"
        );
        assert_eq!(operation(&Method::PUT, "/v1/spaces/sp-1"), "catalogue");
        assert_eq!(outcome(StatusCode::ACCEPTED), "accepted");
        assert_eq!(outcome(StatusCode::UNPROCESSABLE_ENTITY), "invalid");
        assert_eq!(outcome(StatusCode::PAYLOAD_TOO_LARGE), "invalid");
        assert_eq!(outcome(StatusCode::SERVICE_UNAVAILABLE), "unavailable");
    }
}
