use redtrack::RedTrackEvent;

#[derive(RedTrackEvent)]
struct Event {
    #[redtrack(partition_key)]
    user_id: i64,
    #[redtrack(partition_key)]
    session_id: String,
}

fn main() {}
