use redtrack::RedTrackEvent;

#[derive(RedTrackEvent)]
struct Event {
    #[redtrack(type = "decimal(4,5)")]
    amount: rust_decimal::Decimal,
}

fn main() {}
