/* cryptowire dashboard: the order book of the selected symbol, as a ladder and a depth chart.
 *
 * Fed by a conflated subscription, book:50:<SYMBOL> with interval_ms 250 (PROTOCOLS.md 4.1,
 * 4.3): a `snapshot` frame replaces the book, a `delta` frame is applied (size "0" removes a
 * level), a `gap` frame (or a missing offset, or a lost socket) makes the book stale until
 * the next snapshot. A hub without conflation sends every delta: the same code applies them.
 * app.js owns the socket; it hands this file the frames of book: channels and a way to send
 * requests (see `new OrderBookView(...)` there).
 *
 * Prices and sizes are the hub's decimal strings, kept and shown as received; they are
 * ordered exactly (BigInt on the digits), never through a float. Only pixels are computed
 * with Number(): a bar's width and the depth chart's coordinates are pictures, not amounts.
 */
(() => {
  'use strict';

  const DEPTH = 50; // the book: channel subscribed
  const LADDER_LEVELS = 20; // rows a side
  const INTERVAL_MS = 250; // conflation asked of the hub
  const DECIMAL = /^(\d+)(?:\.(\d+))?$/;

  /** A price or size string as [integer digits, scale], exact; null if not a plain decimal. */
  function scaled(text) {
    const m = DECIMAL.exec(String(text));
    if (!m) return null;
    const fraction = m[2] || '';
    return [BigInt(m[1] + fraction), fraction.length];
  }

  /** Exact comparison of two plain decimal strings (-1, 0, 1). */
  function cmp(a, b) {
    const [x, sx] = scaled(a);
    const [y, sy] = scaled(b);
    const scale = Math.max(sx, sy);
    const vx = x * 10n ** BigInt(scale - sx);
    const vy = y * 10n ** BigInt(scale - sy);
    return vx < vy ? -1 : vx > vy ? 1 : 0;
  }

  /** One key per price value: "100.50" and "100.5" are one level (as the hub's book). */
  function key(text) {
    const m = DECIMAL.exec(String(text));
    const whole = m[1].replace(/^0+(?=\d)/, '');
    const fraction = (m[2] || '').replace(/0+$/, '');
    return fraction ? `${whole}.${fraction}` : whole;
  }

  function isZero(text) {
    return !/[1-9]/.test(String(text));
  }

  /** Both sides of a book: price key -> [price, size] strings; sorted best first on read. */
  class Book {
    constructor(depth) {
      this.depth = depth;
      this.bids = new Map();
      this.asks = new Map();
    }

    static valid(levels) {
      return Array.isArray(levels) && levels.every((level) => Array.isArray(level)
        && level.length === 2 && scaled(level[0]) !== null && scaled(level[1]) !== null);
    }

    clear() {
      this.bids.clear();
      this.asks.clear();
    }

    set(side, levels) {
      const map = side === 'bids' ? this.bids : this.asks;
      for (const [price, size] of levels) {
        if (isZero(size)) map.delete(key(price));
        else map.set(key(price), [price, size]);
      }
    }

    /** The levels of a side, best first (bids highest, asks lowest), cut at the depth. */
    levels(side) {
      const map = side === 'bids' ? this.bids : this.asks;
      const sign = side === 'bids' ? -1 : 1;
      const sorted = [...map.values()].sort((a, b) => sign * cmp(a[0], b[0]));
      if (sorted.length > this.depth) { // the hub's delta carries its cut; be safe anyway
        for (const [price] of sorted.slice(this.depth)) map.delete(key(price));
        sorted.length = this.depth;
      }
      return sorted;
    }
  }

  class OrderBookView {
    /**
     * @param {{root: HTMLElement, ladder: HTMLElement, canvas: HTMLCanvasElement,
     *          status: HTMLElement, title: HTMLElement,
     *          request: (op: string, args: string[], extra: object|null,
     *                    callback: Function|null) => void}} parts
     */
    constructor(parts) {
      Object.assign(this, parts);
      this.book = new Book(DEPTH);
      this.symbol = null;
      this.channel = null; // the hub's canonical name once subscribed
      this.live = false; // a snapshot was applied and nothing was missed since
      this.offset = null; // offset of the last frame applied (a missing one is a gap)
      this.frames = 0;
      this.seq = ''; // venueSeq of the book held ('' when the frame had none)
      this.draws = 0;
      this.pending = false;
      this.rows = this.buildLadder();
      this.setState('idle', 'Click a symbol in the table to see its order book.');
    }

    buildLadder() {
      const make = (side, rank) => {
        const bar = document.createElement('span');
        bar.className = 'bar';
        const price = document.createElement('td');
        price.className = 'num price';
        const size = document.createElement('td');
        size.className = 'num size';
        size.append(bar, document.createElement('span'));
        const tr = document.createElement('tr');
        tr.dataset.side = side;
        tr.dataset.rank = String(rank);
        tr.append(price, size);
        return { tr, price, size, bar, text: size.lastChild };
      };
      // Asks above (worst at the top, best next to the spread), bids below (best first).
      const asks = Array.from({ length: LADDER_LEVELS }, (_, i) => make('ask', i));
      const bids = Array.from({ length: LADDER_LEVELS }, (_, i) => make('bid', i));
      const spread = document.createElement('tr');
      spread.className = 'spread';
      const cell = document.createElement('td');
      cell.colSpan = 2;
      spread.append(cell);
      this.ladder.tBodies[0].replaceChildren(...asks.slice().reverse().map((r) => r.tr),
        spread, ...bids.map((r) => r.tr));
      return { asks, bids, spread: cell };
    }

    setState(state, text) {
      this.root.dataset.state = state;
      this.status.textContent = text;
    }

    /** Show ``symbol``'s book (null: none) on the venue of ``suffix`` ('' for the hub's
     * default venue, '@okx'...; a symbol written with its own @venue keeps it);
     * unsubscribes the previous one. */
    setSymbol(symbol, suffix = '') {
      const name = symbol ? `${symbol}${symbol.includes('@') ? '' : suffix}` : null;
      if (name === this.symbol) return;
      if (this.channel) this.request('unsubscribe', [this.channel], null, null);
      this.symbol = name;
      this.channel = name ? `book:${DEPTH}:${name}` : null;
      this.title.textContent = name || '—';
      this.reset();
      this.subscribe();
    }

    reset() {
      this.book.clear();
      this.live = false;
      this.offset = null;
      this.frames = 0;
      this.seq = '';
      this.render();
    }

    /** (Re)subscribe the current channel: on a new socket, or a new symbol. */
    subscribe() {
      const channel = this.channel;
      if (!channel) {
        this.setState('idle', 'Click a symbol in the table to see its order book.');
        return;
      }
      this.live = false;
      this.offset = null;
      this.setState('waiting', `Subscribing to ${channel}…`);
      this.request('subscribe', [channel], { interval_ms: INTERVAL_MS }, (reply) => {
        if (channel !== this.channel) return; // the selection changed meanwhile
        const rejected = (reply.rejected || [])[0];
        if (rejected || reply.success === false) {
          this.setState('rejected', rejected ? rejected.reason : (reply.message || 'rejected'));
          return;
        }
        const canonical = (reply.args || [])[0];
        if (canonical) this.channel = canonical;
        if (!this.live) this.setState('waiting', `${this.channel}: waiting for a snapshot…`);
      });
    }

    /** The socket went away: what is shown is no longer known to be right. */
    stale(reason) {
      if (!this.channel) return;
      this.live = false;
      this.offset = null;
      this.setState('stale', `${this.channel}: ${reason}; stale until the next snapshot.`);
    }

    /** A frame of a book: channel (app.js routes them here). */
    onFrame(channel, frame) {
      if (channel !== this.channel) return;
      const data = frame.data || {};
      if (frame.type === 'gap') {
        this.stale(`gap (${data.reason || 'the source lost its book'})`);
        return;
      }
      if (!Book.valid(data.bids || []) || !Book.valid(data.asks || [])) {
        this.stale('a frame that is not a book');
        return;
      }
      if (frame.type === 'snapshot') {
        this.book.clear();
        this.book.set('bids', data.bids || []);
        this.book.set('asks', data.asks || []);
        this.live = true;
      } else if (frame.type === 'delta') {
        if (!this.live) return; // nothing to apply it to: wait for a snapshot
        if (typeof frame.offset === 'number' && this.offset !== null
            && frame.offset !== this.offset + 1) {
          this.stale(`frames ${this.offset + 1}..${frame.offset - 1} missed`);
          return;
        }
        this.book.set('bids', data.bids || []);
        this.book.set('asks', data.asks || []);
      } else {
        return;
      }
      if (typeof frame.offset === 'number') this.offset = frame.offset;
      this.frames += 1;
      this.seq = data.venueSeq === undefined ? '' : String(data.venueSeq);
      this.setState('live', `${this.channel}: live (${this.frames} frames; ladder of `
        + `${LADDER_LEVELS} levels a side, depth of the ${DEPTH}).`);
      this.schedule();
    }

    /** Draw at most once per animation frame, however many frames arrived. */
    schedule() {
      if (this.pending) return;
      this.pending = true;
      requestAnimationFrame(() => {
        this.pending = false;
        this.render();
      });
    }

    render() {
      const bids = this.book.levels('bids');
      const asks = this.book.levels('asks');
      this.renderLadder(bids.slice(0, LADDER_LEVELS), asks.slice(0, LADDER_LEVELS));
      this.renderDepth(bids, asks);
      this.draws += 1;
      // What is drawn, for tests and the curious: the book's venueSeq and channel.
      this.root.dataset.draws = String(this.draws);
      this.root.dataset.frames = String(this.frames);
      this.root.dataset.seq = this.seq;
      this.root.dataset.channel = this.channel || '';
    }

    renderLadder(bids, asks) {
      // Bar widths only: Number(size) is a pixel proportion, never shown as an amount.
      const max = Math.max(0, ...bids.concat(asks).map(([, size]) => Number(size)));
      for (const [levels, rows] of [[bids, this.rows.bids], [asks, this.rows.asks]]) {
        rows.forEach((row, i) => {
          const level = levels[i];
          row.price.textContent = level ? level[0] : '';
          row.text.textContent = level ? level[1] : '';
          // at least half a percent: a level on the ladder never has an invisible bar
          const share = level && max > 0 ? Math.max(0.5, (Number(level[1]) / max) * 100) : 0;
          row.bar.style.width = `${share}%`;
          row.tr.dataset.empty = level ? 'false' : 'true';
        });
      }
      this.rows.spread.textContent = bids.length && asks.length
        ? `bid ${bids[0][0]} · ask ${asks[0][0]}` : '—';
    }

    /** Cumulative size per side against price; coordinates are Number()s (a picture). */
    renderDepth(bids, asks) {
      const canvas = this.canvas;
      const ratio = window.devicePixelRatio || 1;
      const width = canvas.clientWidth;
      const height = canvas.clientHeight;
      if (canvas.width !== Math.round(width * ratio)) canvas.width = Math.round(width * ratio);
      if (canvas.height !== Math.round(height * ratio)) canvas.height = Math.round(height * ratio);
      const ctx = canvas.getContext('2d');
      ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
      ctx.clearRect(0, 0, width, height);
      if (!bids.length || !asks.length || width === 0) {
        canvas.dataset.points = '0';
        return;
      }
      const steps = (levels) => {
        let total = 0;
        return levels.map(([price, size]) => {
          total += Number(size);
          return [Number(price), total];
        });
      };
      const bidSteps = steps(bids);
      const askSteps = steps(asks);
      const low = bidSteps[bidSteps.length - 1][0];
      const high = askSteps[askSteps.length - 1][0];
      const top = Math.max(bidSteps[bidSteps.length - 1][1], askSteps[askSteps.length - 1][1]);
      const pad = 4;
      const x = (price) => pad + ((price - low) / (high - low || 1)) * (width - 2 * pad);
      const y = (total) => height - pad - (total / (top || 1)) * (height - 2 * pad - 14);
      const css = getComputedStyle(document.documentElement);
      const draw = (points, color, fill) => {
        ctx.beginPath();
        ctx.moveTo(x(points[0][0]), height - pad);
        let last = height - pad;
        for (const [price, total] of points) {
          ctx.lineTo(x(price), last); // a step: the total holds until the next level
          last = y(total);
          ctx.lineTo(x(price), last);
        }
        ctx.lineTo(x(points[points.length - 1][0]), height - pad);
        ctx.closePath();
        ctx.fillStyle = css.getPropertyValue(fill).trim();
        ctx.fill();
        ctx.strokeStyle = css.getPropertyValue(color).trim();
        ctx.lineWidth = 1.5;
        ctx.stroke();
      };
      draw(bidSteps, '--up', '--up-bg');
      draw(askSteps, '--down', '--down-bg');
      ctx.fillStyle = css.getPropertyValue('--muted').trim();
      ctx.font = '11px system-ui, sans-serif';
      ctx.textBaseline = 'top';
      ctx.fillText(bids[bids.length - 1][0], pad, pad); // exact strings as labels
      const right = asks[asks.length - 1][0];
      ctx.fillText(right, width - pad - ctx.measureText(right).width, pad);
      canvas.dataset.points = String(bidSteps.length + askSteps.length);
    }
  }

  window.CryptowireOrderBook = OrderBookView;
})();
