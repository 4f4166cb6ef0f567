use redtrack::RedTrackEvent;

#[derive(RedTrackEvent)]
struct Event {
    #[redtrack(type = "timestamp")]
    day: chrono::NaiveDate,
}

fn main() {}
