use redtrack::RedTrackEvent;

#[derive(RedTrackEvent)]
struct Event {
    #[redtrack(type = "integer")]
    user_id: Option<String>,
}

fn main() {}
