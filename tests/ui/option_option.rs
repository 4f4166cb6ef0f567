use redtrack::RedTrackEvent;

#[derive(RedTrackEvent)]
struct Event {
    nickname: Option<Option<String>>,
    #[redtrack(type = "varchar(64)")]
    alias: Option<Option<String>>,
}

fn main() {}
