//! `GET /openapi.json`: the OpenAPI 3.1 document of the HTTP API, generated from the code.
//!
//! Each route module declares its operations with `#[utoipa::path]` on its handlers and lists them
//! in its `openapi()`; [`document`] merges them. Request bodies are the schema structs of
//! [`crate::schemas`] (the same structs decide which fields a handler accepts), responses the
//! records the handlers serialize (`ToSchema` behind the `openapi` feature of `ledge-platform`,
//! `ledge-search` and `ledge-indexing`). What every route shares is added here, once: the bearer
//! security schemes, and the error answers of the shared extractors and the middleware (401 and 429
//! of a `Caller`, 400 and 413 of a body, 500 and 503 of any route), each `application/problem+json`
//! with the `Problem` schema.
//!
//! The document is built on the first request (the `openapi` module; `/health` never builds it)
//! and kept as bytes.

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, OpenApi, Ref, RefOr, ResponseBuilder};

use crate::AppState;
use crate::problem::{ApiError, PROBLEM_JSON};

/// The openapi module's state: the document, serialized once.
pub struct OpenApiModule {
    json: Bytes,
}

pub fn routes() -> Router<AppState> {
    Router::new().route("/openapi.json", get(serve))
}

/// This document (OpenAPI 3.1), as JSON.
#[utoipa::path(get, path = "/openapi.json", tag = "meta", operation_id = "openapi",
    responses((status = 200, description = "The OpenAPI 3.1 document of this API.", content_type = "application/json", body = Object)))]
async fn serve(State(state): State<AppState>) -> Result<Response, ApiError> {
    let module = state
        .modules
        .openapi
        .get_or_build(|| async {
            let json = document()
                .to_json()
                .map_err(|e| ApiError::internal("cannot encode the OpenAPI document", &e))?;
            Ok(OpenApiModule { json: Bytes::from(json) })
        })
        .await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], module.json.clone()).into_response())
}

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "ledge",
        description = "Self-hostable code intelligence: accounts, organizations, repositories, indexing and code search. \
            Errors are application/problem+json (RFC 9457) with a stable `code` and the `field` at fault.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(serve),
    components(schemas(crate::problem::ProblemBody))
)]
struct Meta;

/// The whole document: every route module's operations, the shared answers and security schemes.
pub fn document() -> OpenApi {
    let mut doc = <Meta as utoipa::OpenApi>::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    for part in [
        super::health::openapi(),
        super::metrics::openapi(),
        super::webhooks::openapi(),
        super::auth::openapi(),
        super::organizations::openapi(),
        super::api_keys::openapi(),
        super::notifications::openapi(),
        super::repositories::records::openapi(),
        super::search::openapi(),
        super::billing::openapi(),
    ] {
        doc.merge(part);
    }
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        ACCESS_TOKEN,
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("JWT")
                .description(Some("A 5-minute access token from POST /auth/login or /auth/refresh."))
                .build(),
        ),
    );
    components.add_security_scheme(
        API_KEY,
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("ledge API key")
                .description(Some("An organization's API key (POST /organizations/{org}/api-keys), with the scopes the route needs."))
                .build(),
        ),
    );
    for item in doc.paths.paths.values_mut() {
        for operation in [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch]
            .into_iter()
            .flatten()
        {
            shared_answers(operation);
        }
    }
    doc
}

/// The security scheme of a signed-in user's access token.
pub(crate) const ACCESS_TOKEN: &str = "access_token";
/// The security scheme of an API key.
pub(crate) const API_KEY: &str = "api_key";

/// Adds the answers every operation of its kind can give, and makes every error answer
/// problem+json.
fn shared_answers(operation: &mut Operation) {
    let authenticated = operation.security.as_ref().is_some_and(|s| !s.is_empty());
    let with_body = operation.request_body.is_some();
    let mut add = |status: &str, description: &str| {
        operation
            .responses
            .responses
            .entry(status.to_owned())
            .or_insert_with(|| RefOr::T(ResponseBuilder::new().description(description).build()));
    };
    if authenticated {
        add("401", "No credential, or an invalid or expired one (`unauthenticated`, field `authorization`).");
        add("429", "Too many requests for this caller (`rate_limited`, with `Retry-After`).");
    }
    if with_body {
        add(
            "400",
            "The body is not a JSON object, or a field is missing, unknown or invalid (named in `field`).",
        );
        add("413", "The body is over the route's limit (`payload_too_large`).");
    }
    add("500", "An internal error (`internal`); the server log has the details under the request id.");
    add(
        "503",
        "Not configured (`not_configured`), temporarily unavailable, or the request took too long (`timeout`).",
    );
    for (status, response) in operation.responses.responses.iter_mut() {
        if !status.starts_with(['4', '5']) {
            continue;
        }
        if let RefOr::T(response) = response
            && response.content.is_empty()
        {
            response
                .content
                .insert(PROBLEM_JSON.to_owned(), Content::new(Some(Ref::from_schema_name("Problem"))));
        }
    }
}
