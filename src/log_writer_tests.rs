//! Tests of the log writer (`log_writer.rs`): order, flushing, gathering, urgency, dropping.

use super::*;

/// An output the test can read back.
#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn lines_come_out_whole_and_in_order_and_the_guard_flushes_them() {
    let sink = Sink::default();
    let (writer, guard) = start(sink.clone()).unwrap();
    for i in 0..1000 {
        writer
            .make_writer()
            .write_all(format!("line {i}\n").as_bytes())
            .unwrap();
    }
    drop(guard);
    let out = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
    let expected: String = (0..1000).map(|i| format!("line {i}\n")).collect();
    assert_eq!(out, expected);
}

/// An access-log line: gathered with the ones that follow.
fn gathered(writer: &LineWriter) -> Line<'_> {
    Line {
        shared: &writer.0,
        urgent: false,
    }
}

fn wait_for(sink: &Sink, expected: &[u8]) {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while sink.0.lock().unwrap().as_slice() != expected {
        assert!(
            std::time::Instant::now() < deadline,
            "never written: {expected:?}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn a_gathered_line_written_alone_is_written_without_waiting_for_more() {
    let sink = Sink::default();
    let (writer, _guard) = start(sink.clone()).unwrap();
    gathered(&writer).write_all(b"one\n").unwrap();
    wait_for(&sink, b"one\n");
}

#[test]
fn an_urgent_line_ends_the_gathering_at_once() {
    let sink = Sink::default();
    let gather = Duration::from_secs(5);
    let (writer, _guard) = start_with(sink.clone(), gather).unwrap();
    gathered(&writer).write_all(b"request\n").unwrap();
    let before = std::time::Instant::now();
    writer.make_writer().write_all(b"listening\n").unwrap();
    wait_for(&sink, b"request\nlistening\n");
    // The gathering alone would take 5 s.
    assert!(before.elapsed() < gather / 2, "took {:?}", before.elapsed());
}

/// An output that blocks until the test lets it go.
struct Stalled(Arc<(Mutex<bool>, Condvar)>);

impl Write for Stalled {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let (open, turn) = &*self.0;
        let mut open = open.lock().unwrap();
        while !*open {
            open = turn.wait(open).unwrap();
        }
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn lines_past_the_limit_are_dropped_and_counted_while_the_output_stalls() {
    let gate = Arc::new((Mutex::new(false), Condvar::new()));
    let (writer, guard) = start(Stalled(gate.clone())).unwrap();
    let before = dropped_lines();
    let line = vec![b'x'; 1023];
    // The first batch is taken by the stalled write; then LIMIT more bytes wait.
    for _ in 0..(3 * LIMIT / 1024) {
        gathered(&writer).write_all(&line).unwrap();
    }
    assert!(
        dropped_lines() - before >= LIMIT / 1024 / 2,
        "nothing was dropped"
    );
    *gate.0.lock().unwrap() = true;
    gate.1.notify_all();
    drop(guard);
}
