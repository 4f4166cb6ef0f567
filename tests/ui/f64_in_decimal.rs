use redtrack::RedTrackEvent;

#[derive(RedTrackEvent)]
struct Event {
    #[redtrack(type = "decimal(8,2)")]
    price: f64,
}

fn main() {}
