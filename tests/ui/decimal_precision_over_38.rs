use redtrack::RedTrackEvent;

#[derive(RedTrackEvent)]
struct Event {
    #[redtrack(type = "numeric(39,2)")]
    amount: rust_decimal::Decimal,
}

fn main() {}
