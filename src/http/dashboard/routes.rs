//! The dashboard's actix-web handlers, thin: each reads the [`Dashboard`],
//! calls the pure modules, and answers.
//!
//! - `GET /`: the dashboard ([`super::html::dashboard`]).
//! - `GET /events`: the live feed ([`super::events`]); HEAD says what a GET
//!   would get, without opening a stream.
//! - `GET /assets/...`: uPlot, the page's script and stylesheet, cached.
//! - `GET /predict`: the form, prefilled with row 0 of the data;
//!   `POST /predict` (a plain form post): the answer, or 422 with the form
//!   again and a message next to each refused field.
//! - `POST /api/predict`: JSON in, JSON out; 422 naming the field.
//!
//! A process without the model role answers `/predict` and
//! `/api/predict` with 404 and says where the model runs: the resource is
//! not here (and will not appear by retrying, which a 503 would suggest).
//! Bodies are bounded ([`MAX_BODY_BYTES`]; 413 beyond it, before `100
//! Continue` when the client asks for one). A method a resource does not
//! answer gets 405 with `Allow`.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};

use super::html::{self, Outcome};
use super::predict::{self, Answer, FieldError, RANGES};
use super::predict_own::OwnModel;
use super::{assets, events, Dashboard};
use crate::core::data::{Dataset, N_FEATURES};

/// Largest body `POST /predict` and `POST /api/predict` read: the diabetes
/// model's ten numbers take a few hundred bytes; a row of a model of your
/// own data, up to 1,000 columns by name, a few dozen KB.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Longest a client may take to send a body of `POST /predict` or `POST
/// /api/predict` (`http.request_timeout` bounds only the request head): a
/// body dripped a byte at a time must not hold a connection for an hour.
pub const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Reads a request body of at most [`MAX_BODY_BYTES`] within
/// [`BODY_TIMEOUT`]: 413 beyond the size, 408 past the time.
async fn read_body(mut payload: web::Payload) -> Result<web::Bytes, HttpResponse> {
    use futures::StreamExt as _;
    let read = async {
        let mut body = web::BytesMut::new();
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|_| HttpResponse::BadRequest().finish())?;
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(HttpResponse::PayloadTooLarge().finish());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body.freeze())
    };
    match tokio::time::timeout(BODY_TIMEOUT, read).await {
        Ok(r) => r,
        Err(_) => Err(HttpResponse::RequestTimeout()
            .insert_header(("connection", "close"))
            .finish()),
    }
}

/// Adds the dashboard's routes to an app.
pub fn configure(cfg: &mut web::ServiceConfig, dash: Dashboard) {
    let body_limit = web::PayloadConfig::new(MAX_BODY_BYTES);
    use crate::http::{not_allowed, GET_HEAD};
    cfg.app_data(web::Data::new(dash))
        .service(
            web::resource("/")
                .route(web::get().to(dashboard))
                .route(web::head().to(dashboard))
                .default_service(not_allowed(GET_HEAD)),
        )
        .service(
            web::resource("/events")
                .route(web::get().to(events_feed))
                .route(web::head().to(events_head))
                .default_service(not_allowed(GET_HEAD)),
        )
        .service(
            web::resource("/assets/{name}")
                .route(web::get().to(asset))
                .route(web::head().to(asset))
                .default_service(not_allowed(GET_HEAD)),
        )
        .service(
            web::resource("/predict")
                .app_data(body_limit.clone())
                .route(web::get().to(predict_form))
                .route(web::head().to(predict_form))
                .route(web::post().to(predict_post))
                .default_service(not_allowed("GET, HEAD, POST")),
        )
        .service(
            web::resource("/api/predict")
                .app_data(body_limit)
                .route(web::post().to(api_predict))
                .default_service(not_allowed("POST")),
        );
}

fn html_page(status: actix_web::http::StatusCode, body: String) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header(("cache-control", "no-store"))
        .insert_header(("x-content-type-options", "nosniff"))
        .insert_header((
            "content-security-policy",
            "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:",
        ))
        .body(body)
}

async fn dashboard(dash: web::Data<Dashboard>) -> HttpResponse {
    let (snap, _) = dash.snapshot(None);
    html_page(actix_web::http::StatusCode::OK, html::dashboard(&snap))
}

async fn events_feed(dash: web::Data<Dashboard>) -> HttpResponse {
    events::respond(&dash)
}

async fn events_head(dash: web::Data<Dashboard>) -> HttpResponse {
    events::head(&dash)
}

async fn asset(req: HttpRequest) -> HttpResponse {
    let path = req.path();
    let Some((a, etag)) = assets::find(path) else {
        return HttpResponse::NotFound().body("no such asset\n");
    };
    let inm = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok());
    let mut resp = if assets::not_modified(inm, etag) {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    resp.insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, assets::cache_control(a)))
        .insert_header(("x-content-type-options", "nosniff"));
    if assets::not_modified(inm, etag) {
        return resp.finish();
    }
    resp.content_type(a.content_type).body(a.bytes)
}

/// Row 0 of the data in raw units, as the CSV writes them.
fn row_zero() -> [String; N_FEATURES] {
    let raw = &Dataset::embedded().raw;
    std::array::from_fn(|j| raw[[0, j]].to_string())
}

fn no_model_page() -> HttpResponse {
    html_page(actix_web::http::StatusCode::NOT_FOUND, html::no_model())
}

/// `POST /predict` of a run of the user's own data: every field checked,
/// the answer or 422 with the form naming each refused field.
async fn predict_own_post(own: &OwnModel, payload: web::Payload) -> HttpResponse {
    let body = match read_body(payload).await {
        Ok(b) => b,
        Err(refused) => return refused,
    };
    let fields = own.fields();
    let (typed, twice) = first_values(&body, fields.len(), |k| {
        fields.iter().position(|f| f.name == k)
    });
    let mut parsed = super::predict_own::parse_form(own, |name| {
        fields
            .iter()
            .position(|f| f.name == name)
            .and_then(|j| typed[j].as_deref())
    });
    // A field given twice is refused, as the JSON API refuses a key twice.
    if twice.contains(&true) {
        let mut errors = parsed.err().unwrap_or_default();
        for (f, _) in fields.iter().zip(&twice).filter(|(_, t)| **t) {
            errors.push(FieldError::new(
                crate::core::text::sanitize(f.name),
                "is given twice",
            ));
        }
        parsed = Err(errors);
    }
    let values: Vec<String> = typed.into_iter().map(Option::unwrap_or_default).collect();
    let refused = |errors: &[FieldError]| {
        html_page(
            actix_web::http::StatusCode::UNPROCESSABLE_ENTITY,
            html::predict_own(own, &values, html::OwnOutcome::Refused(errors)),
        )
    };
    match parsed.and_then(|row| {
        super::predict_own::answer(&own.model, &row, &own.origin).map_err(|e| vec![e])
    }) {
        Ok(a) => html_page(
            actix_web::http::StatusCode::OK,
            html::predict_own(own, &values, html::OwnOutcome::Answered(&a)),
        ),
        Err(errors) => refused(&errors),
    }
}

/// The first value of each of `n` fields of a form post (`field` gives a
/// name's index; unknown names are ignored, as a form's are), bounded to
/// what the form shows back, and which fields were given more than once.
fn first_values(
    body: &[u8],
    n: usize,
    field: impl Fn(&str) -> Option<usize>,
) -> (Vec<Option<String>>, Vec<bool>) {
    let mut typed: Vec<Option<String>> = vec![None; n];
    let mut twice = vec![false; n];
    for (k, v) in url::form_urlencoded::parse(body) {
        if let Some(j) = field(&k) {
            match typed[j] {
                // Shown back in the form: bounded.
                None => typed[j] = Some(v.chars().take(predict::MAX_FIELD_CHARS + 8).collect()),
                Some(_) => twice[j] = true,
            }
        }
    }
    (typed, twice)
}

async fn predict_form(dash: web::Data<Dashboard>) -> HttpResponse {
    if let Some(own) = &dash.own_model {
        return html_page(
            actix_web::http::StatusCode::OK,
            html::predict_own(own, &own.defaults(), html::OwnOutcome::Blank),
        );
    }
    let Some(info) = &dash.model_info else {
        return no_model_page();
    };
    html_page(
        actix_web::http::StatusCode::OK,
        html::predict(info, &row_zero(), Outcome::Blank),
    )
}

async fn predict_post(dash: web::Data<Dashboard>, payload: web::Payload) -> HttpResponse {
    if let Some(own) = &dash.own_model {
        return predict_own_post(own, payload).await;
    }
    let (Some(model), Some(info)) = (&dash.model, &dash.model_info) else {
        return no_model_page();
    };
    let body = match read_body(payload).await {
        Ok(b) => b,
        Err(refused) => return refused,
    };
    // A field given twice keeps its first value here.
    let (typed, _) = first_values(&body, N_FEATURES, |k| {
        RANGES.iter().position(|s| s.name == k)
    });
    let parsed = predict::parse_form(|name| {
        RANGES
            .iter()
            .position(|s| s.name == name)
            .and_then(|j| typed[j].as_deref())
    });
    let values: [String; N_FEATURES] =
        std::array::from_fn(|j| typed[j].clone().unwrap_or_default());
    match parsed {
        Ok(raw) => {
            let a = predict::answer(model, Dataset::embedded(), predict::Input::Raw(raw));
            html_page(
                actix_web::http::StatusCode::OK,
                html::predict(info, &values, Outcome::Answered(&a)),
            )
        }
        Err(errors) => html_page(
            actix_web::http::StatusCode::UNPROCESSABLE_ENTITY,
            html::predict(info, &values, Outcome::Refused(&errors)),
        ),
    }
}

/// The JSON answer of `POST /api/predict`.
pub fn answer_json(a: &Answer, dash: &Dashboard) -> serde_json::Value {
    let model = dash.model.as_deref();
    serde_json::json!({
        "prediction": a.prediction,
        "scaled": a.scaled,
        "nearest": a.nearest,
        "model": {
            "format": model.map(|m| m.format.clone()),
            "origin": dash.model_info.as_ref().map(|i| i.origin.clone()),
            "training_r2": model.map(|m| m.training.r2),
            "intercept": model.map(|m| m.intercept),
            "coefficients": model.map(|m| m.coefficients.clone()),
            "feature_names": model.map(|m| m.feature_names.clone()),
        },
    })
}

fn refused(e: &FieldError) -> HttpResponse {
    HttpResponse::UnprocessableEntity().json(serde_json::json!({
        "error": e.to_string(),
        "field": e.field,
        "message": e.message,
    }))
}

async fn api_predict(dash: web::Data<Dashboard>, payload: web::Payload) -> HttpResponse {
    if let Some(own) = &dash.own_model {
        let body = match read_body(payload).await {
            Ok(b) => b,
            Err(refused) => return refused,
        };
        let answer = super::predict_own::parse_json(&body, own)
            .and_then(|row| super::predict_own::answer(&own.model, &row, &own.origin));
        return match answer {
            Ok(a) => HttpResponse::Ok()
                .insert_header(("cache-control", "no-store"))
                .json(a),
            Err(e) => refused(&e),
        };
    }
    let Some(model) = &dash.model else {
        return HttpResponse::NotFound().json(serde_json::json!({
            "error": "this process does not run the model role: POST /api/predict to the process that does (--roles model, or all roles)",
        }));
    };
    let body = match read_body(payload).await {
        Ok(b) => b,
        Err(refused) => return refused,
    };
    match predict::parse_json(&body, model) {
        Ok(input) => {
            let a = predict::answer(model, Dataset::embedded(), input);
            HttpResponse::Ok()
                .insert_header(("cache-control", "no-store"))
                .json(answer_json(&a, &dash))
        }
        Err(e) => refused(&e),
    }
}
