use redtrack::RedTrackEvent;

#[derive(RedTrackEvent)]
#[redtrack(interleaved_sortkey = "a, b, c, d, e, f, g, h, i")]
struct Event {
    a: i32,
    b: i32,
    c: i32,
    d: i32,
    e: i32,
    f: i32,
    g: i32,
    h: i32,
    i: i32,
}

fn main() {}
