//! The Snap payment page (`/snap/v3/redirection/{token}`): plain HTML with inline CSS and three
//! POST forms standing in for the payer paying by QRIS, being declined, or walking away.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::Utc;
use serde_json::Value;

use crate::model::{Transaction, midtrans_time, notification_status_code, rupiah, url_encode};
use crate::state::{ActError, Action, Shared};

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/snap/v3/redirection/{token}", get(show))
        .route("/snap/v3/redirection/{token}/{action}", post(act))
}

/// Escapes text for HTML content and attribute values.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "\
body{margin:0;background:#eef1f6;font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#1d2433}\
main{max-width:28rem;margin:2rem auto;background:#fff;border-radius:12px;box-shadow:0 2px 12px rgba(0,0,0,.12);padding:1.5rem}\
h1{font-size:1.2rem;margin:0 0 .25rem}\
.note{margin:0 0 1rem;color:#8a5a00;background:#fff4d6;border-radius:6px;padding:.4rem .6rem;font-size:.85rem}\
dl{display:grid;grid-template-columns:auto 1fr;gap:.35rem 1rem;margin:0 0 1rem}\
dt{color:#5b6478}dd{margin:0;font-weight:600;word-break:break-all}\
#amount{font-size:1.3rem}\
table{width:100%;border-collapse:collapse;margin:0 0 1.25rem;font-size:.9rem}\
th,td{text-align:left;padding:.3rem .2rem;border-bottom:1px solid #e3e7ef}\
td.num,th.num{text-align:right}\
.actions{display:flex;flex-direction:column;gap:.6rem}\
form{margin:0}\
button{width:100%;padding:.75rem;border:0;border-radius:8px;font-size:1rem;font-weight:600;cursor:pointer}\
#pay{background:#0b7a3b;color:#fff}#deny{background:#b3261e;color:#fff}#expire{background:#dfe3ea;color:#1d2433}\
.status{padding:.75rem;border-radius:8px;background:#e8eefc;font-weight:600}\
a{color:#1a56db}";

fn layout(title: &str, content: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><style>{STYLE}</style></head>\
         <body><main><h1>Fake Midtrans (test payments)</h1>\
         <p class=\"note\">A stand-in for Midtrans: no real money moves here.</p>{content}</main></body></html>\n",
        esc(title)
    )
}

fn not_found() -> Response {
    let html = layout("Payment page not found", "<p class=\"status\">This payment page does not exist.</p>");
    (StatusCode::NOT_FOUND, Html(html)).into_response()
}

fn items_table(items: &Value) -> String {
    let Some(lines) = items.as_array().filter(|l| !l.is_empty()) else { return String::new() };
    let mut rows = String::new();
    for line in lines {
        let name = line.get("name").and_then(Value::as_str).unwrap_or("");
        let price = line.get("price").and_then(Value::as_i64).unwrap_or(0);
        let quantity = line.get("quantity").and_then(Value::as_i64).unwrap_or(0);
        rows.push_str(&format!(
            "<tr><td>{}</td><td class=\"num\">{quantity} &times; {}</td><td class=\"num\">{}</td></tr>",
            esc(name),
            rupiah(price),
            rupiah(price.saturating_mul(quantity)),
        ));
    }
    format!(
        "<table id=\"items\"><thead><tr><th>Item</th><th class=\"num\">Qty &times; price</th>\
         <th class=\"num\">Subtotal</th></tr></thead><tbody>{rows}</tbody></table>"
    )
}

fn status_line(tx: &Transaction) -> Option<String> {
    let text = match tx.status.as_deref() {
        Some("settlement" | "capture") => "Paid",
        Some("deny") => "Payment declined",
        Some("expire") => "Payment expired",
        Some("cancel") => "Payment cancelled",
        Some("refund") => "Paid, then refunded",
        Some("partial_refund") => "Paid, then partly refunded",
        Some(s) if tx.is_final() => s,
        None if tx.expires_at <= Utc::now() => "This payment link has expired",
        _ => return None,
    };
    let status = tx.status.as_deref().unwrap_or("none");
    Some(format!(
        "<p id=\"status\" class=\"status\" data-status=\"{}\">{} (transaction_status: {})</p>",
        esc(status),
        esc(text),
        esc(status)
    ))
}

fn render(tx: &Transaction, token: &str) -> String {
    let mut content = format!(
        "<dl><dt>Order</dt><dd id=\"order-id\">{}</dd><dt>Amount</dt><dd id=\"amount\">{}</dd>\
         <dt>Pay before</dt><dd id=\"expiry\">{} WIB</dd></dl>{}",
        esc(&tx.order_id),
        rupiah(tx.gross_amount),
        midtrans_time(tx.expires_at),
        items_table(&tx.items),
    );
    match status_line(tx) {
        Some(line) => content.push_str(&line),
        None => {
            let base = format!("/snap/v3/redirection/{}", url_encode(token));
            content.push_str(&format!(
                "<div class=\"actions\">\
                 <form method=\"post\" action=\"{base}/pay\"><button id=\"pay\">Pay now</button></form>\
                 <form method=\"post\" action=\"{base}/deny\"><button id=\"deny\">Decline payment</button></form>\
                 <form method=\"post\" action=\"{base}/expire\"><button id=\"expire\">Let it expire</button></form>\
                 </div>"
            ));
        }
    }
    layout(&format!("Pay {}", tx.order_id), &content)
}

async fn show(State(s): State<Arc<Shared>>, Path(token): Path<String>) -> Response {
    let st = s.lock();
    let Some(tx) = st.by_token.get(&token).and_then(|order_id| st.txs.get(order_id)) else {
        return not_found();
    };
    Html(render(tx, &token)).into_response()
}

/// `finish` with `order_id`, `status_code` and `transaction_status` appended to its query.
pub(crate) fn finish_redirect(finish: &str, order_id: &str, status_code: &str, status: &str) -> String {
    let (base, fragment) = match finish.find('#') {
        Some(i) => finish.split_at(i),
        None => (finish, ""),
    };
    let separator = match base.find('?') {
        None => "?",
        Some(_) if base.ends_with('?') || base.ends_with('&') => "",
        Some(_) => "&",
    };
    format!(
        "{base}{separator}order_id={}&status_code={}&transaction_status={}{fragment}",
        url_encode(order_id),
        url_encode(status_code),
        url_encode(status)
    )
}

async fn act(State(s): State<Arc<Shared>>, Path((token, action)): Path<(String, String)>) -> Response {
    let action = match action.as_str() {
        "pay" => Action::Pay,
        "deny" => Action::Deny,
        "expire" => Action::Expire,
        _ => return not_found(),
    };
    let Some(order_id) = s.lock().by_token.get(&token).cloned() else { return not_found() };
    let tx = match s.act(&order_id, action) {
        Ok(tx) => tx,
        Err(ActError::NotFound(_)) => return not_found(),
        Err(ActError::Invalid(message)) => {
            let Some(tx) = s.lock().txs.get(&order_id).cloned() else { return not_found() };
            if !tx.is_final() {
                let content = format!(
                    "<p class=\"status\">{}</p>{}",
                    esc(&message),
                    status_line(&tx).unwrap_or_default()
                );
                return (StatusCode::CONFLICT, Html(layout("Payment not possible", &content)))
                    .into_response();
            }
            // Already decided (a second click, say): report the outcome as it stands.
            tx
        }
    };
    let status = tx.status.as_deref().unwrap_or("none");
    let status_code = notification_status_code(status, tx.fraud_status.as_deref());
    if let Some(finish) = &tx.finish_url {
        return Redirect::to(&finish_redirect(finish, &tx.order_id, status_code, status)).into_response();
    }
    let content = format!(
        "<dl><dt>Order</dt><dd id=\"order-id\">{}</dd><dt>Amount</dt><dd id=\"amount\">{}</dd></dl>\
         <p id=\"status\" class=\"status\" data-status=\"{}\">Done: transaction_status {} (status_code {})</p>\
         <p><a href=\"/snap/v3/redirection/{}\">Back to the payment page</a></p>",
        esc(&tx.order_id),
        rupiah(tx.gross_amount),
        esc(status),
        esc(status),
        esc(status_code),
        url_encode(&token),
    );
    Html(layout("Payment done", &content)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finish_redirect_appends_query() {
        assert_eq!(
            finish_redirect("http://shop.test/done", "A-1", "200", "settlement"),
            "http://shop.test/done?order_id=A-1&status_code=200&transaction_status=settlement"
        );
        assert_eq!(
            finish_redirect("http://shop.test/done?lang=id#top", "A-1", "202", "deny"),
            "http://shop.test/done?lang=id&order_id=A-1&status_code=202&transaction_status=deny#top"
        );
    }

    #[test]
    fn escapes_html() {
        assert_eq!(esc("<a href=\"x\">&'"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
    }
}
