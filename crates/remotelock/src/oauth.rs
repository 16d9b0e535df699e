//! OAuth 2.0 against RemoteLock's authorization server (remotelock-api.md §1.2): the admin's
//! authorization-code flow and the refresh grant. RemoteLock takes the client credentials in
//! the form body, and every refresh returns a new refresh token (the used one dies).

use std::{future::Future, pin::Pin, time::Duration};

use chrono::{DateTime, Utc};
use oauth2::{
    AsyncHttpClient, AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken,
    EndpointNotSet, EndpointSet, HttpRequest, HttpResponse, RedirectUrl, RefreshToken,
    RequestTokenError, TokenResponse, TokenUrl,
    basic::{BasicClient, BasicErrorResponse, BasicErrorResponseType, BasicTokenResponse},
};
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use crate::RemoteLockSettings;
use crate::{
    budget::Window,
    client::{base_url, http_client},
    error::{NotAuthorized, RemoteLockError, TransientCause},
};

/// Access tokens live two hours (remotelock-api.md §1.2); assumed when `expires_in` is absent.
const DOCUMENTED_LIFETIME: Duration = Duration::from_secs(7200);

type ConfiguredClient =
    BasicClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

/// What the token endpoint issued. `Debug` shows no token.
#[derive(Debug, Clone)]
pub struct TokenSet {
    pub access_token: SecretString,
    /// Absent for client-credentials tokens.
    pub refresh_token: Option<SecretString>,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct OAuthClient {
    client: ConfiguredClient,
    http: TokenEndpointHttp,
}

/// How token requests travel: reqwest without redirects (a token request must not be
/// bounced elsewhere with our secret). A named type rather than a closure, so the futures
/// stay `Send` for any lifetime, as spawned tasks and axum handlers need.
#[derive(Debug, Clone)]
struct TokenEndpointHttp(reqwest::Client);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Grant {
    AuthorizationCode,
    RefreshToken,
}

impl OAuthClient {
    pub fn new(settings: &RemoteLockSettings) -> Result<Self, RemoteLockError> {
        let oauth_url = base_url(&settings.oauth_url);
        let endpoint = |path: &str| {
            oauth_url.join(path).map_err(|e| {
                RemoteLockError::configuration("remotelock.oauth_url cannot take a path", e)
            })
        };
        let client = BasicClient::new(ClientId::new(settings.client_id.clone()))
            .set_client_secret(ClientSecret::new(
                settings.client_secret.expose_secret().to_owned(),
            ))
            .set_auth_type(AuthType::RequestBody)
            .set_auth_uri(AuthUrl::from_url(endpoint("oauth/authorize")?))
            .set_token_uri(TokenUrl::from_url(endpoint("oauth/token")?))
            .set_redirect_uri(RedirectUrl::from_url(settings.redirect_url.clone()));
        Ok(Self {
            client,
            http: TokenEndpointHttp(http_client(settings.request_timeout)?),
        })
    }

    /// Where the admin sends the browser; `state` comes back on the callback for checking.
    pub fn authorize_url(&self, state: &str) -> Url {
        let (url, _) = self
            .client
            .authorize_url(|| CsrfToken::new(state.to_owned()))
            .url();
        url
    }

    pub async fn exchange_code(&self, code: &str) -> Result<TokenSet, RemoteLockError> {
        let requested_at = Utc::now();
        let response = self
            .client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .request_async(&self.http)
            .await;
        token_set(response, Grant::AuthorizationCode, requested_at)
    }

    /// Spends `refresh_token`: persist the returned pair before anything else can fail.
    pub async fn refresh(&self, refresh_token: &SecretString) -> Result<TokenSet, RemoteLockError> {
        let requested_at = Utc::now();
        let refresh_token = RefreshToken::new(refresh_token.expose_secret().to_owned());
        let response = self
            .client
            .exchange_refresh_token(&refresh_token)
            .request_async(&self.http)
            .await;
        token_set(response, Grant::RefreshToken, requested_at)
    }
}

impl TokenEndpointHttp {
    /// Sends a token request. Server trouble is reported here, with its status, so it counts
    /// as transient: `oauth2` would report it as an unreadable OAuth error.
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, RemoteLockError> {
        let transport = |e: reqwest::Error| {
            RemoteLockError::transient(TransientCause::Transport(e.without_url()))
        };
        let request = reqwest::Request::try_from(request).map_err(transport)?;
        let response = self.0.execute(request).await.map_err(transport)?;
        let status = response.status();
        if status == StatusCode::TOO_MANY_REQUESTS {
            return Err(RemoteLockError::Transient {
                cause: TransientCause::RateLimited,
                retry_after: Window::from_headers(response.headers())
                    .map(|window| window.wait(chrono::Utc::now())),
            });
        }
        if status.is_server_error() {
            return Err(RemoteLockError::transient(TransientCause::Server {
                status,
                message: "the token endpoint failed".to_owned(),
            }));
        }
        let headers = response.headers().clone();
        let body = response.bytes().await.map_err(transport)?;
        let mut answer = HttpResponse::new(body.to_vec());
        *answer.status_mut() = status;
        *answer.headers_mut() = headers;
        Ok(answer)
    }
}

impl<'c> AsyncHttpClient<'c> for TokenEndpointHttp {
    type Error = RemoteLockError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, RemoteLockError>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(self.send(request))
    }
}

fn token_set(
    response: Result<BasicTokenResponse, RequestTokenError<RemoteLockError, BasicErrorResponse>>,
    grant: Grant,
    requested_at: DateTime<Utc>,
) -> Result<TokenSet, RemoteLockError> {
    let response = response.map_err(|error| match error {
        RequestTokenError::Request(error) => error,
        // For a refresh, invalid_grant means the refresh token is dead: the user revoked us.
        RequestTokenError::ServerResponse(refusal)
            if grant == Grant::RefreshToken
                && *refusal.error() == BasicErrorResponseType::InvalidGrant =>
        {
            RemoteLockError::NotAuthorized(NotAuthorized::Revoked {
                detail: refusal.to_string(),
            })
        }
        RequestTokenError::ServerResponse(refusal) => RemoteLockError::TokenRefused {
            message: refusal.to_string(),
        },
        RequestTokenError::Parse(error, _body) => RemoteLockError::Decode(error.into_inner()),
        RequestTokenError::Other(message) => RemoteLockError::TokenRefused { message },
    })?;
    let lifetime = response.expires_in().unwrap_or(DOCUMENTED_LIFETIME);
    let lifetime = chrono::Duration::from_std(lifetime).unwrap_or(chrono::Duration::MAX);
    Ok(TokenSet {
        access_token: SecretString::from(response.access_token().secret().as_str()),
        refresh_token: response
            .refresh_token()
            .map(|token| SecretString::from(token.secret().as_str())),
        // Counted from before the request, so the token is never thought fresher than it is.
        expires_at: requested_at
            .checked_add_signed(lifetime)
            .unwrap_or(DateTime::<Utc>::MAX_UTC),
    })
}
