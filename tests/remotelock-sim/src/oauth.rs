//! The OAuth server (remotelock-api.md §1.2): `/oauth/authorize`, `/oauth/token`,
//! `/oauth/revoke`. Errors follow RFC 6749 (the real server is very likely Doorkeeper).

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Form, FromRequest, Query, Request, State};
use axum::http::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, LOCATION, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Deserialize;
use serde_json::{Value, json};
use url::{Url, form_urlencoded};

use crate::config::SimConfig;
use crate::state::AppState;
use crate::tokens::{InvalidGrant, IssuedToken};

/// Renders the code as JSON instead of redirecting (for command-line setups).
const OUT_OF_BAND: &str = "urn:ietf:wg:oauth:2.0:oob";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/oauth/authorize", get(consent).post(decide))
        .route("/oauth/token", post(token))
        .route("/oauth/revoke", post(revoke))
}

#[derive(Debug)]
struct OAuthError {
    status: StatusCode,
    error: &'static str,
    description: String,
}

impl OAuthError {
    fn invalid_request(description: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            error: "invalid_request",
            description: description.into(),
        }
    }

    fn invalid_client() -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            error: "invalid_client",
            description: "Client authentication failed due to unknown client, no client authentication included, or unsupported authentication method.".to_owned(),
        }
    }
}

impl From<InvalidGrant> for OAuthError {
    fn from(InvalidGrant(description): InvalidGrant) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            error: "invalid_grant",
            description: description.to_owned(),
        }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            [(CACHE_CONTROL, "no-store")],
            Json(json!({ "error": self.error, "error_description": self.description })),
        )
            .into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                WWW_AUTHENTICATE,
                HeaderValue::from_static(r#"Basic realm="RemoteLock""#),
            );
        }
        response
    }
}

#[derive(Debug, Deserialize)]
struct AuthorizeParams {
    client_id: Option<String>,
    response_type: Option<String>,
    redirect_uri: Option<String>,
    state: Option<String>,
}

/// The consent form's answer: the authorize parameters again, and the button pressed.
#[derive(Debug, Deserialize)]
struct Decision {
    #[serde(flatten)]
    params: AuthorizeParams,
    decision: String,
}

/// What is wrong with an authorize request, as the error page says it; `None`: it may go on.
fn refusal(state: &AppState, params: &AuthorizeParams) -> Option<Response> {
    if params.client_id.as_deref() != Some(state.config.client_id.as_str()) {
        return Some(error_page(
            "Client authentication failed due to unknown client.",
        ));
    }
    let Some(redirect_uri) = &params.redirect_uri else {
        return Some(error_page("The redirect_uri parameter is missing."));
    };
    if redirect_uri != OUT_OF_BAND && Url::parse(redirect_uri).is_err() {
        return Some(error_page("The redirect_uri is not a valid URL."));
    }
    None
}

/// The page the user approves the application on (the user is signed in already: the
/// simulator has one user), naming the account the token will act on — the seeded one unless
/// the test picked another. Its form posts back here.
async fn consent(State(state): State<AppState>, Query(params): Query<AuthorizeParams>) -> Response {
    if let Some(page) = refusal(&state, &params) {
        return page;
    }
    let account = state
        .accounts
        .get(state.accounts.approving())
        .map(|account| account.name)
        .unwrap_or_default();
    let hidden = |name: &str, value: &Option<String>| {
        value.as_ref().map_or_else(String::new, |value| {
            format!(
                r#"<input type="hidden" name="{name}" value="{}">"#,
                escape(value)
            )
        })
    };
    let fields = [
        hidden("client_id", &params.client_id),
        hidden("response_type", &params.response_type),
        hidden("redirect_uri", &params.redirect_uri),
        hidden("state", &params.state),
    ]
    .concat();
    let page = format!(
        r#"<!doctype html><html lang="en"><title>Authorize application</title><main>
<h1>Authorize {client} to use your account?</h1>
<p>This application will be able to manage the locks, access users and guests of
<strong id="account">{account}</strong>.</p>
<form method="post" action="/oauth/authorize">{fields}
<button type="submit" name="decision" value="approve" id="approve">Authorize</button>
<button type="submit" name="decision" value="deny" id="deny">Deny</button>
</form></main></html>"#,
        client = escape(&state.config.client_id),
        account = escape(&account),
    );
    ([(CONTENT_TYPE, "text/html; charset=utf-8")], page).into_response()
}

/// The user's answer: a code for the account the page named, or `access_denied`; redirected
/// with `state`, or rendered as JSON for the out-of-band redirect.
async fn decide(State(state): State<AppState>, Form(answer): Form<Decision>) -> Response {
    let params = answer.params;
    if let Some(page) = refusal(&state, &params) {
        return page;
    }
    let redirect_uri = params.redirect_uri.expect("checked by refusal");
    let outcome = match (answer.decision.as_str(), params.response_type.as_deref()) {
        ("approve", Some("code")) => Ok(state
            .tokens
            .issue_code(&redirect_uri, state.accounts.approving())),
        ("approve", _) => Err("unsupported_response_type"),
        _ => Err("access_denied"),
    };
    let client_state = params.state.unwrap_or_default();
    if redirect_uri == OUT_OF_BAND {
        return match outcome {
            Ok(code) => Json(json!({ "code": code, "state": client_state })).into_response(),
            Err(error) => error_page(&format!("The authorization failed: {error}.")),
        };
    }
    let mut target = Url::parse(&redirect_uri).expect("checked by refusal");
    {
        let mut query = target.query_pairs_mut();
        match &outcome {
            Ok(code) => query.append_pair("code", code),
            Err(error) => query.append_pair("error", error),
        };
        if !client_state.is_empty() {
            query.append_pair("state", &client_state);
        }
    }
    (StatusCode::FOUND, [(LOCATION, target.to_string())]).into_response()
}

/// Text for an HTML attribute or element.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn error_page(message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        [(CONTENT_TYPE, "text/html; charset=utf-8")],
        format!("<!doctype html><title>Authorization error</title><h1>An error has occurred</h1><p>{message}</p>"),
    )
        .into_response()
}

/// Form fields of a token or revoke request. Like the real server, parameters in the query
/// string are accepted too (a third-party client relies on it); the body wins.
struct FormParams(HashMap<String, String>);

impl FormParams {
    fn parse(uri: &Uri, body: &[u8]) -> Self {
        let query = uri.query().unwrap_or_default().as_bytes();
        Self(
            form_urlencoded::parse(query)
                .chain(form_urlencoded::parse(body))
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    fn require(&self, name: &str) -> Result<&str, OAuthError> {
        self.get(name)
            .ok_or_else(|| OAuthError::invalid_request(format!("The {name} parameter is missing.")))
    }
}

/// The docs show client credentials as form fields only; we also accept HTTP Basic
/// (RFC 6749 §2.3.1) because the `oauth2` crate sends them that way by default.
fn authenticate_client(
    config: &SimConfig,
    headers: &HeaderMap,
    params: &FormParams,
) -> Result<(), OAuthError> {
    let (id, secret) = match basic_credentials(headers) {
        Some(credentials) => credentials,
        None => (
            params.get("client_id").unwrap_or_default().to_owned(),
            params.get("client_secret").unwrap_or_default().to_owned(),
        ),
    };
    if id == config.client_id && secret == config.client_secret {
        Ok(())
    } else {
        Err(OAuthError::invalid_client())
    }
}

/// `Authorization: Basic base64(urlencode(id) ":" urlencode(secret))`.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(BASE64.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let form_decode = |part: &str| {
        percent_encoding::percent_decode_str(&part.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned()
    };
    Some((form_decode(id), form_decode(secret)))
}

/// The form of a client's POST (the body, or the query string some clients use), once the
/// client is authenticated: the token and revoke endpoints both start so.
struct ClientForm(FormParams);

impl FromRequest<AppState> for ClientForm {
    type Rejection = Response;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Response> {
        let (uri, headers) = (request.uri().clone(), request.headers().clone());
        let body = Bytes::from_request(request, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let params = FormParams::parse(&uri, &body);
        authenticate_client(&state.config, &headers, &params)
            .map_err(IntoResponse::into_response)?;
        Ok(Self(params))
    }
}

async fn token(
    State(state): State<AppState>,
    ClientForm(params): ClientForm,
) -> Result<impl IntoResponse, OAuthError> {
    let issued = grant(&state, &params)?;
    Ok(([(CACHE_CONTROL, "no-store")], Json(issued)))
}

fn grant(state: &AppState, params: &FormParams) -> Result<IssuedToken, OAuthError> {
    match params.require("grant_type")? {
        "authorization_code" => {
            let code = params.require("code")?;
            let redirect_uri = params.require("redirect_uri")?;
            Ok(state.tokens.redeem_code(code, redirect_uri)?)
        }
        "refresh_token" => Ok(state.tokens.refresh(params.require("refresh_token")?)?),
        // These reach the account that owns the OAuth application (§1.2): the seeded one.
        "client_credentials" => Ok(state.tokens.issue(false, state.accounts.seeded().id)),
        _ => Err(OAuthError {
            status: StatusCode::BAD_REQUEST,
            error: "unsupported_grant_type",
            description:
                "The authorization grant type is not supported by the authorization server."
                    .to_owned(),
        }),
    }
}

/// RFC 7009: unknown tokens are "revoked" too.
async fn revoke(
    State(state): State<AppState>,
    ClientForm(params): ClientForm,
) -> Result<Json<Value>, OAuthError> {
    state.tokens.revoke(params.require("token")?);
    Ok(Json(json!({})))
}
