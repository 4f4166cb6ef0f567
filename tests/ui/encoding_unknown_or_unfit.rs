use redtrack::RedTrackEvent;

#[derive(RedTrackEvent)]
struct Event {
    #[redtrack(encode = "gzip")]
    a: i64,
    #[redtrack(encode = "text255")]
    b: i64,
}

fn main() {}
