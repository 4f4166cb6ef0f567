use redtrack::RedTrackEvent;

#[derive(RedTrackEvent)]
#[redtrack(table = "events", diststyle = "random")]
struct Event {
    user_id: i64,
}

fn main() {}
