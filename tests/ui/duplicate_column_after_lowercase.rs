use redtrack::RedTrackEvent;

#[derive(RedTrackEvent)]
struct Event {
    user_id: i64,
    #[redtrack(rename = "USER_ID")]
    other: i64,
}

fn main() {}
