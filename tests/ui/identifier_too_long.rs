use redtrack::RedTrackEvent;

#[derive(RedTrackEvent)]
#[redtrack(table = "events")]
struct Event {
    #[redtrack(rename = "a_column_name_that_goes_on_and_on_and_on_and_on_and_on_and_on_and_on_and_on_and_on_and_on_and_on_and_on_and_on_and_on_and_on_and_on_end")]
    value: i64,
}

fn main() {}
