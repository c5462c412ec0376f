// Live streams over Socket.IO: snapshot + pushed rows, with per-stream sequence numbers.
//
// On every (re)connect the page asks for fresh snapshots; each carries a cursor
// ({partition: offset}, or {"0": version} for the derived grid). Rows that arrive before the
// snapshot are held, then every row at or below the cursor is dropped: after a reconnect the
// page has no gap and no duplicate row, whichever web worker it reaches.
export class LiveStreams {
  constructor(streams, { snapshot, row, status }) {
    this.streams = streams;
    this.onSnapshot = snapshot;
    this.onRow = row;
    this.onStatus = status || (() => {});
    this.cursor = {};
    this.pending = {};
    this.ready = {};
  }

  connect() {
    // eslint-disable-next-line no-undef
    const socket = io({ path: "/socket.io", withCredentials: true, reconnectionDelayMax: 3000 });
    this.socket = socket;
    socket.on("connect", () => this.subscribe());
    socket.on("disconnect", () => this.onStatus("lost"));
    socket.on("connect_error", async () => {
      this.onStatus("lost");
      const me = await fetch("/api/session", { credentials: "same-origin" });
      if (me.status === 401) location.href = "/login?next=" + encodeURIComponent(location.pathname);
    });
    socket.on("session_ended", () => { location.href = "/login"; });
    // The worker lost a push (its socket layer failed): fresh snapshots hold what was missed.
    socket.on("resync", () => this.subscribe());
    // A worker pushes each fetch's rows of a stream as one message (JSON text), in their order.
    socket.on("rows", (text) => {
      const { stream, rows } = JSON.parse(text);
      if (!this.ready[stream]) (this.pending[stream] ||= []).push(...rows);
      else for (const row of rows) this.accept(stream, row);
    });
    return this;
  }

  async subscribe() {
    for (const s of this.streams) { this.ready[s] = false; this.pending[s] = []; }
    const answer = JSON.parse(await this.socket.timeout(10000).emitWithAck("subscribe", { streams: this.streams }));
    if (answer.error) { this.onStatus("lost"); return; }
    for (const snap of answer.snapshots) {
      this.cursor[snap.stream] = { ...snap.cursor };
      this.onSnapshot(snap.stream, snap.rows);
      this.ready[snap.stream] = true;
      for (const row of this.pending[snap.stream] || []) this.accept(snap.stream, row);
      this.pending[snap.stream] = [];
    }
    this.onStatus("live");
  }

  accept(stream, row) {
    const cursor = (this.cursor[stream] ||= {});
    const [key, seq] = stream === "grid" ? ["0", row._v] : [String(row._p), row._o];
    if ((cursor[key] ?? -1) >= seq) return; // already in the snapshot or seen
    cursor[key] = seq;
    this.onRow(stream, row);
  }

  close() {
    this.onStatus = () => {};
    if (this.socket) this.socket.close();
  }
}
