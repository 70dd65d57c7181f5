//! Watch a running modelwatch pipeline from RabbitMQ.
//!
//! modelwatch (with `--amqp-url` or `AMQP_URL`) publishes every message of
//! its pipeline to the durable topic exchange `ml_pipeline`, with the
//! routing keys `features`, `y_true`, `y_pred` and `metrics`, and JSON bodies
//! `{"id": <sample id>, "body": ...}`. This consumer binds a private queue
//! to that exchange and prints each message as `<routing key> <body>`.
//!
//! ```text
//! cargo run --example consume                 # metrics only
//! cargo run --example consume -- y_pred       # predictions
//! cargo run --example consume -- '#' --max 20 # everything, stop after 20
//! cargo run --example consume -- features --schema 3f2a...  # one model's
//! AMQP_URL=amqp://user:pass@host:5672/%2f cargo run --example consume
//! ```
//!
//! A run of your own data (`--data`) sends its features by column name,
//! `{"id": ..., "features": {"<column>": <value>, ...}}`, with its
//! schema's fingerprint in the header `x-modelwatch-schema` (`modelwatch
//! train` prints it). With `--schema`, messages of another schema (another
//! model, or the diabetes data, which has none) are not printed: they are
//! counted on stderr (docs/wire.md).
//!
//! The binding key is a topic pattern: a routing key, `#` for all, or
//! several keys by running several consumers. Delivery is at-least-once: a
//! message may come twice after a broker restart; its `message_id` property
//! (the sample id) tells the copies apart.

use futures::StreamExt;
use lapin::options::{BasicConsumeOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties};

const DEFAULT_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
const EXCHANGE: &str = "ml_pipeline";

/// What to listen to, from the command line:
/// `[BINDING_KEY] [--max N] [--schema FINGERPRINT]`.
struct Args {
    binding_key: String,
    /// Stop after this many messages (forever when absent).
    max: Option<u64>,
    /// Only messages whose `x-modelwatch-schema` header is this.
    schema: Option<String>,
    /// The exchange modelwatch publishes to (`bridge.exchange`).
    exchange: String,
}

fn parse_args() -> Result<Args, String> {
    let mut binding_key = None;
    let mut max = None;
    let mut schema = None;
    let mut exchange = EXCHANGE.to_string();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--max" => {
                let n = args.next().ok_or("--max needs a number")?;
                max = Some(n.parse().map_err(|_| format!("--max {n}: not a number"))?);
            }
            "--schema" => schema = Some(args.next().ok_or("--schema needs a fingerprint")?),
            "--exchange" => exchange = args.next().ok_or("--exchange needs a name")?,
            "-h" | "--help" => return Err(
                "usage: consume [BINDING_KEY (default metrics)] [--max N] [--schema FINGERPRINT] [--exchange NAME]"
                    .into(),
            ),
            key if binding_key.is_none() => binding_key = Some(key.to_string()),
            other => return Err(format!("unexpected argument {other:?}")),
        }
    }
    Ok(Args {
        binding_key: binding_key.unwrap_or_else(|| "metrics".into()),
        max,
        schema,
        exchange,
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args()?;
    let url = std::env::var("AMQP_URL").unwrap_or_else(|_| DEFAULT_URL.into());

    let conn = Connection::connect(&url, ConnectionProperties::default()).await?;
    let channel = conn.create_channel().await?;

    // modelwatch declares the exchange too; declaring it here, as the
    // library does (a durable topic exchange), lets this consumer start first.
    modelwatch::amqp::topology::exchange(&channel, &args.exchange).await?;

    // A private queue: the broker names it, only this connection uses it,
    // and it is deleted when we disconnect. (For a consumer that must not
    // miss messages while it is down, declare a named durable queue.)
    let queue = channel
        .queue_declare(
            "".into(),
            QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?;
    channel
        .queue_bind(
            queue.name().clone(),
            args.exchange.as_str().into(),
            args.binding_key.as_str().into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;

    // no_ack: the broker forgets a message once sent; fine for watching.
    let mut consumer = channel
        .basic_consume(
            queue.name().clone(),
            "modelwatch-consume-example".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?;
    // From here on, every matching message is ours.
    println!(
        "waiting for messages on exchange {} with binding key {:?}",
        args.exchange, args.binding_key
    );

    let mut seen = 0;
    let mut other = 0;
    while let Some(delivery) = consumer.next().await {
        let delivery = delivery?;
        let schema = schema_of(&delivery);
        if args.schema.is_some() && schema != args.schema {
            // Another model's, or the diabetes data's: its columns are not ours.
            other += 1;
            eprintln!("skipped a message of schema {schema:?} ({other} so far)");
            continue;
        }
        // The body is JSON: {"id": ..., "body": ...}. Parse it with
        // serde_json to use the values; here it is printed as it came. A
        // batch message (`bridge.batch`, docs/wire.md) is a JSON array of
        // them: each is printed on its own line.
        if is_batch(&delivery) {
            let messages: Vec<serde_json::Value> = serde_json::from_slice(&delivery.data)?;
            for one in &messages {
                println!("{} {one}", delivery.routing_key);
            }
            seen += messages.len() as u64;
        } else {
            println!(
                "{} {}",
                delivery.routing_key,
                String::from_utf8_lossy(&delivery.data)
            );
            seen += 1;
        }
        if args.max.is_some_and(|max| seen >= max) {
            break;
        }
    }

    conn.close(200, "bye".into()).await?;
    Ok(())
}

/// A batch message: several samples in one, a JSON array (docs/wire.md).
fn is_batch(delivery: &lapin::message::Delivery) -> bool {
    delivery
        .properties
        .content_type()
        .as_ref()
        .is_some_and(|c| {
            c.as_str()
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .eq_ignore_ascii_case("application/vnd.modelwatch.batch+json")
        })
}

/// The `x-modelwatch-schema` header of a message of a run of your own
/// data (`None`: the diabetes data's, or another producer's).
fn schema_of(delivery: &lapin::message::Delivery) -> Option<String> {
    let headers = delivery.properties.headers().as_ref()?;
    match headers.inner().get("x-modelwatch-schema")? {
        lapin::types::AMQPValue::LongString(s) => {
            Some(String::from_utf8_lossy(s.as_bytes()).into_owned())
        }
        other => Some(format!("{other:?}")),
    }
}
