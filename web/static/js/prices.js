// Prices from the web worker: the chart's quote batches and the marks (unrealised P&L), over
// Socket.IO (room "prices"). The server samples its QuoteBook a few times a second, so the page
// gets at most that many updates per symbol however fast the market ticks.
export class PriceStream {
  constructor({ joined, quotes, marks, status }) {
    this.onJoined = joined;
    this.onQuotes = quotes;
    this.onMarks = marks;
    this.onStatus = status || (() => {});
  }

  connect() {
    // eslint-disable-next-line no-undef
    const socket = io({ path: "/socket.io", withCredentials: true, reconnectionDelayMax: 3000 });
    this.socket = socket;
    socket.on("connect", () => this.join());
    socket.on("disconnect", () => this.onStatus("lost"));
    socket.on("session_ended", () => { location.href = "/login"; });
    socket.on("quotes", ({ quotes }) => this.onQuotes(quotes));
    socket.on("marks", (marks) => this.onMarks(marks));
    return this;
  }

  // Every (re)connect: the history and marks as they are now, then the pushes.
  async join() {
    const answer = await this.socket.timeout(10000).emitWithAck("prices", {});
    if (answer.error) { this.onStatus("lost"); return; }
    this.onJoined(answer);
    this.onStatus("live");
  }

  close() {
    this.onStatus = () => {};
    if (this.socket) this.socket.close();
  }
}

// "unknown" for a figure the server could not compute (no quote): never shown as 0.
export function known(value) { return value !== null && value !== undefined; }

export function age(seconds) {
  if (!known(seconds)) return "no quote";
  return seconds < 60 ? `${seconds.toFixed(1)} s old` : `${Math.round(seconds / 60)} min old`;
}
