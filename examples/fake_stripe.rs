//! The tests' fake Stripe (tests/api/fake_stripe.rs), served on its own so a
//! real `patronage serve` can take payments against it. Used by
//! tests/schemathesis.sh:
//!
//!   cargo run --example fake_stripe
//!
//! prints `http://127.0.0.1:<port>/` (for `PATRONAGE__STRIPE__API_BASE`) and
//! serves until killed. Its webhook secret is `whsec_test_patronage`.

#[allow(dead_code)]
#[path = "../tests/api/fake_stripe.rs"]
mod fake_stripe;

use std::io::Write;

#[tokio::main]
async fn main() {
    let fake = fake_stripe::FakeStripe::start().await;
    println!("{}", fake.base);
    std::io::stdout().flush().expect("stdout");
    std::future::pending::<()>().await;
}
