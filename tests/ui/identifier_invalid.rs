use redtrack::RedTrackEvent;

#[derive(RedTrackEvent)]
#[redtrack(table = "my events")]
struct Event {
    #[redtrack(rename = "1st")]
    first: i64,
}

fn main() {}
