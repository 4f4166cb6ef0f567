use redtrack::RedTrackEvent;

#[derive(RedTrackEvent)]
#[redtrack(tabel = "events")]
struct Event {
    id: i64,
}

fn main() {}
