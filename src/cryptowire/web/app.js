/* cryptowire dashboard: plain JavaScript, no framework, no build step.
 *
 * Two sockets to the hub that served this page: /ws (native protocol: tickers, candles, the
 * order book, the BBO row, swaps, burns) and /rfq (seed 001 quotes). The venue selector
 * moves the tickers and the order book to another venue (their channels get its @suffix). Both reconnect by themselves with
 * capped, jittered backoff.
 * Money values arrive as decimal strings and are shown exactly as they came: nothing here
 * turns a price or an amount into a float (the candle chart, chart.js, is a picture: it
 * plots numbers on a canvas; its legend shows the candle's exact strings).
 */
(() => {
  'use strict';

  const params = new URLSearchParams(window.location.search);
  const API_KEY = params.get('api_key') || '';
  const STORAGE_SYMBOLS = 'cryptowire.dashboard.symbols';
  const STORAGE_VENUE = 'cryptowire.dashboard.venue';
  const VENUES = ['linear', 'spot', 'binance', 'binance-spot', 'okx', 'okx-spot'];
  const DEFAULT_SYMBOLS = ['BTCUSDT', 'ETHUSDT', 'SOLUSDT'];
  const FEED_MAX_ROWS = 100;
  const STATS_EVERY_MS = 3000;
  const BACKOFF_BASE_MS = 500;
  const BACKOFF_CAP_MS = 10000;
  const PING_EVERY_MS = 15000;
  const PING_TIMEOUT_MS = 10000;
  // Close codes after which retrying with the same key is pointless (docs/protocol.md).
  const FATAL_CLOSE = { 4001: 'the API key was refused', 4010: 'the API key was revoked' };

  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (name === 'class') node.className = value;
      else if (name === 'text') node.textContent = value;
      else node.setAttribute(name, value === true ? '' : String(value));
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function socketUrl(path) {
    const proto = window.location.protocol === 'https:' ? 'wss:' : 'ws:';
    const query = API_KEY ? `?api_key=${encodeURIComponent(API_KEY)}` : '';
    return `${proto}//${window.location.host}${path}${query}`;
  }

  // -- exact decimal strings -------------------------------------------------------------

  const DECIMAL = /^([+-])?(\d+)(?:\.(\d+))?$/;

  /** Compare two decimal strings exactly (BigInt), or 0 when either is not plain decimal. */
  function decCmp(a, b) {
    const x = DECIMAL.exec(String(a));
    const y = DECIMAL.exec(String(b));
    if (!x || !y) return 0;
    const fx = x[3] || '';
    const fy = y[3] || '';
    const scale = Math.max(fx.length, fy.length);
    const vx = BigInt(x[2] + fx.padEnd(scale, '0')) * (x[1] === '-' ? -1n : 1n);
    const vy = BigInt(y[2] + fy.padEnd(scale, '0')) * (y[1] === '-' ? -1n : 1n);
    return vx < vy ? -1 : vx > vy ? 1 : 0;
  }

  /** "1.44" (a percent, as change24hPercent carries it) -> "+1.44%": the hub's digits,
   * signed; never scaled (the frame is already a percent: Bybit's fraction price24hPcnt is
   * moved two places by the hub, PROTOCOLS.md). */
  function percentText(text) {
    const m = DECIMAL.exec(String(text));
    if (!m) return String(text);
    const digits = `${m[2]}${m[3] ? `.${m[3]}` : ''}`;
    const zero = !/[1-9]/.test(digits);
    const sign = zero ? '' : (m[1] === '-' ? '-' : '+');
    return `${sign}${digits}%`;
  }

  function isPositiveAmount(text) {
    return /^\d+(\.\d+)?$/.test(text) && /[1-9]/.test(text);
  }

  function shortHex(hex) {
    const s = String(hex || '');
    return s.length > 14 ? `${s.slice(0, 8)}…${s.slice(-4)}` : s;
  }

  function clock(ms) {
    const d = Number.isFinite(ms) ? new Date(ms) : new Date();
    return d.toLocaleTimeString([], { hour12: false });
  }

  function duration(seconds) {
    const s = Math.max(0, Math.floor(seconds));
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    if (h) return `${h}h ${m}m`;
    if (m) return `${m}m ${s % 60}s`;
    return `${s}s`;
  }

  // -- a socket that reconnects by itself -------------------------------------------------

  class ReconnectingSocket {
    /**
     * @param {string} name  shown in the header (/ws, /rfq)
     * @param {string} path  socket path on this host
     * @param {{onOpen?: Function, onMessage: Function, onDown?: Function}} handlers
     */
    constructor(name, path, handlers) {
      this.name = name;
      this.path = path;
      this.handlers = handlers;
      this.ws = null;
      this.attempt = 0;
      this.timer = null;
      this.tick = null;
      this.retryAt = 0;
      this.everOpened = false;
      this.stopped = false;
      this.badge = $(`conn-${name}`);
    }

    get open() {
      return this.ws !== null && this.ws.readyState === WebSocket.OPEN;
    }

    setState(state, text) {
      this.badge.dataset.state = state;
      this.badge.querySelector('.conn-text').textContent = text;
    }

    connect() {
      if (this.stopped) return;
      clearTimeout(this.timer);
      clearInterval(this.tick);
      this.setState(this.everOpened ? 'reconnecting' : 'connecting',
        this.everOpened ? `reconnecting (try ${this.attempt})…` : 'connecting…');
      let ws;
      try {
        ws = new WebSocket(socketUrl(this.path));
      } catch (err) {
        this.schedule(String(err));
        return;
      }
      this.ws = ws;
      ws.onopen = () => {
        if (ws !== this.ws) return;
        this.attempt = 0;
        this.everOpened = true;
        this.setState('open', 'open');
        if (this.handlers.onOpen) this.handlers.onOpen(this);
      };
      ws.onmessage = (event) => {
        if (ws !== this.ws) return;
        let msg;
        try {
          msg = JSON.parse(event.data);
        } catch (err) {
          return;
        }
        this.handlers.onMessage(msg, this);
      };
      ws.onclose = (event) => {
        if (ws !== this.ws) return;
        this.lost(event.code, event.reason);
      };
      ws.onerror = () => { /* onclose follows with the code */ };
    }

    /** Forget the current socket (without waiting for its close) and plan the next try. */
    drop(reason) {
      const ws = this.ws;
      if (ws) {
        ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
        try { ws.close(4000, reason.slice(0, 100)); } catch (err) { /* already closed */ }
      }
      this.lost(1006, reason);
    }

    lost(code, reason) {
      this.ws = null;
      if (this.handlers.onDown) this.handlers.onDown(this);
      const fatal = FATAL_CLOSE[code];
      if (fatal) {
        this.stopped = true;
        this.setState('closed', `closed ${code}: ${fatal}${reason ? ` (${reason})` : ''}`);
        return;
      }
      this.schedule(reason ? `${code} ${reason}` : String(code));
    }

    schedule(why) {
      this.attempt += 1;
      const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** (this.attempt - 1));
      const delay = Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
      this.retryAt = Date.now() + delay;
      this.everOpened = true;
      const show = () => {
        const left = Math.max(0, (this.retryAt - Date.now()) / 1000).toFixed(1);
        this.setState('reconnecting', `reconnecting in ${left}s (try ${this.attempt}, ${why})`);
      };
      show();
      clearInterval(this.tick);
      this.tick = setInterval(show, 200);
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.connect(), delay);
    }

    /** Reconnect now (the browser came back online). */
    nudge() {
      if (!this.stopped && this.ws === null) this.connect();
    }

    send(obj) {
      if (!this.open) return false;
      this.ws.send(JSON.stringify(obj));
      return true;
    }
  }

  // -- /ws: tickers and the swaps/burns feed ----------------------------------------------

  let nextId = 1;
  const pending = new Map(); // request id -> callback(reply)
  let clockOffsetMs = 0; // server time - browser time, from pong timestamps
  let pingSentAt = 0;
  let pingTimer = null;

  function request(sock, op, args, extra, callback) {
    const id = nextId++;
    if (callback) pending.set(id, callback);
    const body = { id, op, ...(args ? { args } : {}), ...(extra || {}) };
    if (!sock.send(body)) pending.delete(id);
    return id;
  }

  function serverNow() {
    return Date.now() + clockOffsetMs;
  }

  // ---- tickers

  const tickers = new Map(); // channel -> row state
  let tickerUpdates = 0;

  // ---- venue: the @suffix of the tickers' and the book's channels (PROTOCOLS.md 4.5)

  let venue = loadVenue();
  let defaultVenue = 'linear'; // the hub's, from the `channels` catalog once it answers

  function loadVenue() {
    try {
      const saved = window.localStorage.getItem(STORAGE_VENUE);
      if (VENUES.includes(saved)) return saved;
    } catch (err) { /* storage unavailable: the default */ }
    return 'linear';
  }

  /** '' for the hub's default venue (its channels have no suffix), else '@<venue>'. */
  function venueSuffix() {
    return venue === defaultVenue ? '' : `@${venue}`;
  }

  /** The ticker channel of a row's symbol: a symbol typed with its own @venue keeps it. */
  function tickerChannel(symbol) {
    return `ticker:${symbol}${symbol.includes('@') ? '' : venueSuffix()}`;
  }

  function loadSymbols() {
    try {
      const saved = JSON.parse(window.localStorage.getItem(STORAGE_SYMBOLS) || 'null');
      if (Array.isArray(saved) && saved.every((s) => typeof s === 'string')) return saved;
    } catch (err) { /* storage unavailable or corrupt: use the defaults */ }
    return DEFAULT_SYMBOLS.slice();
  }

  function saveSymbols() {
    try {
      const names = [...tickers.values()].map((row) => row.symbol);
      window.localStorage.setItem(STORAGE_SYMBOLS, JSON.stringify(names));
    } catch (err) { /* not fatal */ }
  }

  /** "btcusdt@SPOT" -> "BTCUSDT@spot"; null when it cannot be a symbol. */
  function normalizeSymbol(text) {
    const [sym, venue] = String(text).trim().split('@');
    const symbol = sym.toUpperCase();
    if (!/^[A-Z0-9]{2,30}$/.test(symbol)) return null;
    if (venue === undefined) return symbol;
    if (!/^[a-z]{2,12}$/i.test(venue)) return null;
    return `${symbol}@${venue.toLowerCase()}`;
  }

  function addTickerRow(symbol) {
    const channel = tickerChannel(symbol);
    if (tickers.has(channel)) return null;
    const cells = {
      symbol: el('th', { scope: 'row' }, el('span', { class: 'sym', text: symbol })),
      price: el('td', { class: 'num price', text: '…' }),
      change: el('td', { class: 'num', text: '…' }),
      bid: el('td', { class: 'num', text: '…' }),
      ask: el('td', { class: 'num', text: '…' }),
      updates: el('td', { class: 'num muted', text: '0' }),
      remove: el('td', { class: 'actions' }),
    };
    const button = el('button', {
      type: 'button', class: 'ghost remove', title: `Remove ${symbol}`,
      'aria-label': `Remove ${symbol}`, text: '×',
    });
    cells.remove.append(button);
    const tr = el('tr', { 'data-symbol': symbol, 'data-state': 'waiting' }, ...Object.values(cells));
    const row = { symbol, channel, tr, cells, updates: 0, price: null, source: null };
    button.addEventListener('click', () => removeTicker(row));
    tr.tabIndex = 0;
    tr.title = 'Show this symbol in the chart';
    tr.addEventListener('click', (event) => {
      if (!event.target.closest('button')) setChart(row.symbol, chartState.interval);
    });
    tr.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' && event.target === tr) setChart(row.symbol, chartState.interval);
    });
    tickers.set(channel, row);
    $('tickers').tBodies[0].append(tr);
    $('tickers-empty').hidden = true;
    return row;
  }

  function removeTicker(row) {
    tickers.delete(row.channel);
    row.tr.remove();
    request(native, 'unsubscribe', [row.channel]);
    saveSymbols();
    $('tickers-empty').hidden = tickers.size > 0;
    if (row.symbol === chartState.symbol) {
      const next = [...tickers.values()].find((r) => r.tr.dataset.state !== 'rejected');
      setChart(next ? next.symbol : null, chartState.interval);
    }
  }

  function markTickerRejected(row, reason) {
    row.tr.dataset.state = 'rejected';
    row.cells.price.textContent = '—';
    row.cells.change.textContent = '';
    row.cells.bid.textContent = '';
    row.cells.ask.textContent = '';
    row.cells.symbol.querySelector('.reason')?.remove();
    row.cells.symbol.append(el('span', { class: 'reason', text: reason }));
  }

  function subscribeTickers(rows) {
    if (!rows.length) return;
    request(native, 'subscribe', rows.map((r) => r.channel), null, (reply) => {
      const rejected = new Map((reply.rejected || []).map((r) => [r.arg, r.reason]));
      rows.forEach((row, i) => {
        const reason = rejected.get(row.channel) ?? rejected.get(row.symbol);
        if (reason !== undefined) {
          markTickerRejected(row, reason);
          return;
        }
        // One symbol added by hand: adopt the hub's canonical channel name.
        const canonical = rows.length === 1 ? (reply.args || [])[0] : undefined;
        if (canonical && canonical !== row.channel && !tickers.has(canonical)) {
          tickers.delete(row.channel);
          row.channel = canonical;
          tickers.set(canonical, row);
          if (row.symbol.includes('@')) { // typed with an alias (@bybit-spot): the hub's name
            const before = row.symbol;
            row.symbol = canonical.replace(/^ticker:/, '');
            row.tr.dataset.symbol = row.symbol;
            if (chartState.symbol === before) setChart(row.symbol, chartState.interval);
            row.cells.symbol.querySelector('.sym').textContent = row.symbol;
            saveSymbols();
          }
        }
        if (i === 0 && reply.success === false && !rejected.size) {
          markTickerRejected(row, reply.message || 'rejected');
        }
      });
    });
  }

  function onTicker(channel, frame, data) {
    const row = tickers.get(channel);
    if (!row) return;
    if (frame.type === 'gap') {
      row.tr.dataset.state = 'gap';
      row.cells.price.title = 'The upstream reconnected: waiting for a fresh snapshot.';
      return;
    }
    if (frame.type === 'removed') {
      markTickerRejected(row, 'removed by the source');
      return;
    }
    if (!data || typeof data !== 'object') return;
    row.tr.dataset.state = 'live';
    row.cells.symbol.querySelector('.reason')?.remove();
    const price = data.price ?? null;
    if (price !== null) {
      const dir = row.price === null ? 0 : decCmp(price, row.price);
      row.cells.price.textContent = String(price);
      row.cells.price.classList.remove('up', 'down', 'flash');
      if (dir !== 0) {
        void row.cells.price.offsetWidth; // restart the flash animation
        row.cells.price.classList.add(dir > 0 ? 'up' : 'down', 'flash');
      }
      row.price = price;
    }
    const change = data.change24hPercent;
    if (change !== undefined && change !== null) {
      row.cells.change.textContent = percentText(change);
      row.cells.change.title = `change24hPercent: ${change}`;
      row.cells.change.className = `num ${['neg', 'flat', 'pos'][decCmp(change, '0') + 1]}`;
    }
    row.cells.bid.textContent = data.bid && data.bid.price != null ? String(data.bid.price) : '—';
    row.cells.ask.textContent = data.ask && data.ask.price != null ? String(data.ask.price) : '—';
    row.updates += 1;
    row.cells.updates.textContent = String(row.updates);
    const source = frame.source || null;
    if (source && source !== row.source) {
      row.source = source;
      row.cells.symbol.querySelector('.src')?.remove();
      row.cells.symbol.append(el('span', { class: `src src-${source}`, text: source }));
    }
    tickerUpdates += 1;
    const counter = $('ticker-updates');
    counter.textContent = String(tickerUpdates);
    counter.dataset.count = String(tickerUpdates);
  }

  function setTickerMsg(text, isError) {
    const msg = $('ticker-msg');
    msg.textContent = text;
    msg.classList.toggle('error', Boolean(isError));
  }

  /** Move every row without its own @venue to the selected venue: leave the old channels,
   * subscribe the new ones; the book follows (setChart). */
  function applyVenue() {
    const moved = [];
    const gone = [];
    for (const row of [...tickers.values()]) {
      const channel = tickerChannel(row.symbol);
      if (channel === row.channel) continue;
      gone.push(row.channel);
      tickers.delete(row.channel);
      row.channel = channel;
      tickers.set(channel, row);
      row.tr.dataset.state = 'waiting';
      row.price = null;
      row.source = null;
      row.updates = 0;
      row.cells.symbol.querySelector('.src')?.remove();
      row.cells.symbol.querySelector('.reason')?.remove();
      for (const name of ['price', 'change', 'bid', 'ask']) row.cells[name].textContent = '…';
      row.cells.updates.textContent = '0';
      moved.push(row);
    }
    if (gone.length) request(native, 'unsubscribe', gone);
    subscribeTickers(moved);
    if (bookView) bookView.setSymbol(chartState.symbol, venueSuffix());
    $('venue').value = venue;
    $('tickers').dataset.venue = venue;
  }

  $('venue').value = venue;
  $('tickers').dataset.venue = venue;
  $('venue').addEventListener('change', (event) => {
    venue = VENUES.includes(event.target.value) ? event.target.value : 'linear';
    try { window.localStorage.setItem(STORAGE_VENUE, venue); } catch (err) { /* not fatal */ }
    applyVenue();
  });

  $('add-symbol').addEventListener('submit', (event) => {
    event.preventDefault();
    const input = $('symbol-input');
    const symbol = normalizeSymbol(input.value);
    if (!symbol) {
      setTickerMsg('A symbol is 2-30 letters or digits, optionally @venue (BTCUSDT, BTCUSDT@spot).', true);
      return;
    }
    if (tickers.has(tickerChannel(symbol))) {
      setTickerMsg(`${symbol} is already in the table.`, true);
      return;
    }
    const row = addTickerRow(symbol);
    input.value = '';
    setTickerMsg('');
    saveSymbols();
    subscribeTickers([row]);
  });

  // ---- candle chart: kline:<interval>:<symbol> of the selected row (drawn by chart.js) -

  const chartState = {
    symbol: null,
    interval: '1m',
    channel: null, // the kline channel the chart shows (the hub's canonical name)
    view: window.CryptowireCandleChart
      ? new window.CryptowireCandleChart($('chart'), $('chart-legend')) : null,
  };

  // ---- order book: book:50:<symbol> of the selected row (ladder and depth: book.js)

  const bookView = window.CryptowireOrderBook ? new window.CryptowireOrderBook({
    root: $('book'), ladder: $('book-ladder'), canvas: $('depth-chart'),
    status: $('book-msg'), title: $('book-symbol'),
    request: (op, args, extra, callback) => request(native, op, args, extra, callback),
  }) : null;

  // ---- BBO row: bbo:<symbol> of the selected row, across venues (bbo.js)

  const bboView = window.CryptowireBbo ? new window.CryptowireBbo({
    root: $('bbo'),
    request: (op, args, extra, callback) => request(native, op, args, extra, callback),
  }) : null;

  function setChartMsg(text, isError) {
    const msg = $('chart-msg');
    msg.textContent = text;
    msg.classList.toggle('error', Boolean(isError));
  }

  function subscribeChart() {
    const channel = chartState.channel;
    if (!channel || !native.open) return;
    setChartMsg(`Subscribing to ${channel}…`);
    request(native, 'subscribe', [channel], null, (reply) => {
      if (channel !== chartState.channel) return; // the selection changed meanwhile
      const rejected = (reply.rejected || [])[0];
      if (rejected || reply.success === false) {
        setChartMsg(rejected ? rejected.reason : (reply.message || 'rejected'), true);
        return;
      }
      const canonical = (reply.args || [])[0];
      if (canonical) chartState.channel = canonical;
      setChartMsg(`${chartState.channel}: live candles, times in UTC. Exact prices: the legend `
        + 'and the table.');
    });
  }

  /** Chart ``symbol`` (null: nothing) at ``interval``; (re)subscribes its kline channel. */
  function setChart(symbol, interval) {
    const channel = symbol ? `kline:${interval}:${symbol}` : null;
    for (const row of tickers.values()) {
      if (row.symbol === symbol) row.tr.dataset.selected = 'true';
      else delete row.tr.dataset.selected;
    }
    for (const button of $('chart-intervals').querySelectorAll('button')) {
      button.setAttribute('aria-pressed', String(button.dataset.interval === interval));
    }
    $('chart-symbol').textContent = symbol ? `${symbol} · ${interval}` : '—';
    const before = chartState.channel;
    chartState.symbol = symbol;
    chartState.interval = interval;
    if (bookView) bookView.setSymbol(symbol, venueSuffix());
    if (bboView) bboView.setSymbol(symbol);
    if (channel === before) return;
    if (before) request(native, 'unsubscribe', [before]);
    chartState.channel = channel;
    if (chartState.view) chartState.view.reset();
    if (!channel) {
      setChartMsg('Click a symbol in the table to chart it.');
      return;
    }
    if (!chartState.view || !chartState.view.ensure()) {
      setChartMsg('The chart library did not load (/static/vendor/).', true);
      return;
    }
    subscribeChart();
  }

  function onKline(channel, frame, data) {
    if (channel !== chartState.channel || !chartState.view) return;
    if (frame.type === 'gap') {
      setChartMsg(`${channel}: the upstream reconnected; candles resume with the next update.`);
      return;
    }
    chartState.view.apply(data);
  }

  for (const button of $('chart-intervals').querySelectorAll('button')) {
    button.addEventListener('click', () => {
      if (chartState.symbol) setChart(chartState.symbol, button.dataset.interval);
      else chartState.interval = button.dataset.interval;
    });
  }

  // ---- swaps and burns

  let feedChain = 'eth';
  let feedCount = 0;
  const feedPositions = new Map(); // channel -> {epoch, offset}: recover after a reconnect

  function feedChannels() {
    const out = [];
    if ($('feed-swaps').checked) out.push(`swap:${feedChain}`);
    if ($('feed-burns').checked) out.push(`burn:${feedChain}`);
    return out;
  }

  function feedNote(text, kind) {
    addFeedRow(el('tr', { class: `note note-${kind || 'info'}` },
      el('td', { colspan: 6, text: `${clock(Date.now())}  ${text}` })));
  }

  function addFeedRow(tr) {
    const body = $('feed').tBodies[0];
    body.prepend(tr);
    while (body.rows.length > FEED_MAX_ROWS) body.deleteRow(body.rows.length - 1);
    $('feed-empty').hidden = true;
  }

  function subscribeFeed(channels, withRecover) {
    if (!channels.length) return;
    const recover = {};
    if (withRecover) {
      for (const ch of channels) {
        const pos = feedPositions.get(ch);
        if (pos) recover[ch] = pos;
      }
    }
    const extra = Object.keys(recover).length ? { recover } : null;
    request(native, 'subscribe', channels, extra, (reply) => {
      for (const r of reply.rejected || []) feedNote(`${r.arg}: ${r.reason}`, 'error');
      for (const [ch, pos] of Object.entries(reply.positions || {})) {
        if (!feedPositions.has(ch) && channels.includes(ch)) feedPositions.set(ch, pos);
      }
      for (const [ch, ok] of Object.entries(reply.recovered || {})) {
        if (!ok) feedNote(`${ch}: events missed while disconnected are no longer in history.`, 'gap');
      }
    });
  }

  function onFeed(channel, frame, data) {
    if (!feedChannels().includes(channel)) return;
    if (typeof frame.offset === 'number' && frame.epoch) {
      const last = feedPositions.get(channel);
      if (last && last.epoch === frame.epoch && frame.offset <= last.offset) return; // seen
      feedPositions.set(channel, { epoch: frame.epoch, offset: frame.offset });
    }
    if (frame.type === 'gap') {
      feedNote(`${channel}: gap in the source; some events may be missing.`, 'gap');
      return;
    }
    if (!data || typeof data !== 'object') return;
    const isSwap = channel.startsWith('swap:');
    const kind = isSwap ? (data.side === 'sell' ? 'sell' : 'buy') : 'burn';
    const label = isSwap ? `swap ${kind}` : 'burn';
    const token = data.symbol || shortHex(data.token);
    const amount = isSwap ? data.token_amount : data.amount;
    const paired = isSwap ? data.paired_amount : '';
    const tx = data.tx_hash || '';
    const txCell = el('td', { class: 'mono', title: tx }, shortHex(tx));
    const tr = el('tr', { class: `ev ev-${kind}`, 'data-kind': isSwap ? 'swap' : 'burn' },
      el('td', { class: 'muted', text: clock(Number(data.time ?? frame.ts)) }),
      el('td', {}, el('span', { class: `tag tag-${kind}`, text: label })),
      el('td', { title: data.token || '', text: token }),
      el('td', { class: 'num', text: amount == null ? '—' : String(amount) }),
      el('td', { class: 'num', text: paired == null ? '' : String(paired) }),
      txCell);
    addFeedRow(tr);
    feedCount += 1;
    const counter = $('feed-count');
    counter.textContent = String(feedCount);
    counter.dataset.count = String(feedCount);
  }

  function resubscribeFeed(oldChannels) {
    const now = feedChannels();
    const gone = oldChannels.filter((ch) => !now.includes(ch));
    const added = now.filter((ch) => !oldChannels.includes(ch));
    if (gone.length) {
      request(native, 'unsubscribe', gone);
      gone.forEach((ch) => feedPositions.delete(ch));
    }
    subscribeFeed(added, false);
  }

  $('feed-chain').addEventListener('change', (event) => {
    const before = feedChannels();
    feedChain = event.target.value;
    resubscribeFeed(before);
    feedNote(`chain ${feedChain}`, 'info');
  });
  for (const id of ['feed-swaps', 'feed-burns']) {
    const box = $(id);
    box.addEventListener('change', () => {
      // The box is already toggled: feedChannels() is the new set; rebuild the old one.
      const now = feedChannels();
      const kind = id === 'feed-swaps' ? 'swap' : 'burn';
      const prev = box.checked ? now.filter((c) => !c.startsWith(`${kind}:`))
        : [...now, `${kind}:${feedChain}`];
      resubscribeFeed(prev);
    });
  }
  $('feed-clear').addEventListener('click', () => {
    $('feed').tBodies[0].replaceChildren();
    $('feed-empty').hidden = false;
  });

  function fillChains(chains) {
    const select = $('feed-chain');
    const names = Object.keys(chains || {});
    if (!names.length) return;
    if (!names.includes(feedChain)) names.unshift(feedChain);
    select.replaceChildren(...names.map((name) => el('option', {
      value: name, text: chains[name] ? `${name} (${chains[name]})` : name,
    })));
    select.value = feedChain;
  }

  // ---- the native socket

  function nativePing(sock) {
    if (pingSentAt && Date.now() - pingSentAt > PING_TIMEOUT_MS) {
      pingSentAt = 0;
      sock.drop('no pong');
      return;
    }
    if (!pingSentAt && sock.send({ op: 'ping' })) pingSentAt = Date.now();
  }

  const native = new ReconnectingSocket('ws', '/ws', {
    onOpen(sock) {
      pending.clear();
      pingSentAt = 0;
      nativePing(sock);
      clearInterval(pingTimer);
      pingTimer = setInterval(() => nativePing(sock), PING_EVERY_MS);
      request(sock, 'channels', null, null, (reply) => {
        fillChains(reply.data && reply.data.chains);
        const hubDefault = reply.data && reply.data.default_venue;
        if (VENUES.includes(hubDefault) && hubDefault !== defaultVenue) {
          defaultVenue = hubDefault; // the suffixes change: move what is subscribed
          applyVenue();
        }
      });
      const rows = [...tickers.values()];
      rows.forEach((row) => { if (row.tr.dataset.state !== 'rejected') row.tr.dataset.state = 'waiting'; });
      subscribeTickers(rows);
      subscribeFeed(feedChannels(), true);
      subscribeChart();
      if (bookView) bookView.subscribe();
      if (bboView) bboView.subscribe();
    },
    onDown() {
      if (bookView) bookView.stale('the connection dropped');
      if (bboView) bboView.stale('the connection dropped');
      clearInterval(pingTimer);
      pingSentAt = 0;
      pending.clear();
      for (const row of tickers.values()) {
        if (row.tr.dataset.state === 'live') row.tr.dataset.state = 'stale';
      }
    },
    onMessage(msg) {
      if (msg.channel !== undefined || msg.stream !== undefined) {
        let channel = msg.channel;
        if (channel === undefined) { // the seed 003 (Mudrex) envelope, if the hub uses it
          const parts = String(msg.stream).split('.');
          channel = parts[2] === 'ticker' ? `ticker:${parts[parts.length - 1]}` : String(msg.stream);
        }
        if (channel.startsWith('ticker:')) onTicker(channel, msg, msg.data);
        else if (channel.startsWith('swap:') || channel.startsWith('burn:')) onFeed(channel, msg, msg.data);
        else if (channel.startsWith('kline:')) onKline(channel, msg, msg.data);
        else if (channel.startsWith('book:') && bookView) bookView.onFrame(channel, msg);
        else if (channel.startsWith('bbo:') && bboView) bboView.onFrame(channel, msg);
        return;
      }
      if (msg.op === 'pong') {
        if (pingSentAt && typeof msg.timestamp === 'number') {
          const now = Date.now();
          clockOffsetMs = msg.timestamp - Math.round((pingSentAt + now) / 2);
        }
        pingSentAt = 0;
        return;
      }
      if (msg.id !== undefined && pending.has(msg.id)) {
        const callback = pending.get(msg.id);
        pending.delete(msg.id);
        if (msg.op === 'error') setTickerMsg(`${msg.code}: ${msg.message}`, true);
        else callback(msg);
        return;
      }
      if (msg.op === 'error') setTickerMsg(`${msg.code}: ${msg.message}`, true);
    },
  });

  // -- /rfq: the seed 001 converter widget -------------------------------------------------

  const rfqKey = `dash-${Math.random().toString(36).slice(2, 10)}`;
  const rfqState = {
    uuid: null, // the handshake value of the current /rfq connection
    started: false, // a quote session runs on this connection
    offer: null, // the live offer
    accepting: null, // the offer being accepted
    debounce: null,
  };

  function rfqInputs() {
    const currFrom = $('rfq-from').value.trim().toUpperCase();
    const currTo = $('rfq-to').value.trim().toUpperCase();
    const amountFrom = $('rfq-amount').value.trim();
    return { currFrom, currTo, amountFrom };
  }

  function setRfqStatus(text, kind) {
    const status = $('rfq-status');
    status.textContent = text;
    status.dataset.kind = kind || 'info';
  }

  function showResult(kind, title, lines) {
    const box = $('rfq-result');
    box.hidden = false;
    box.dataset.kind = kind;
    box.replaceChildren(el('strong', { text: title }),
      ...lines.map((line) => el('div', { class: 'line', text: line })));
  }

  function clearOffer() {
    rfqState.offer = null;
    $('rfq-offer').dataset.state = 'idle';
    $('offer-amount-to').textContent = '—';
    $('offer-curr-to').textContent = '';
    $('offer-rate').textContent = '—';
    $('offer-commission').textContent = '—';
    $('offer-countdown').textContent = '—';
    $('rfq-accept').disabled = true;
  }

  function rfqSend(action, extra) {
    if (!rfqState.uuid) return false;
    return rfq.send({ rfq: { action, key: rfqKey, uuid: rfqState.uuid, ...extra } });
  }

  function requote() {
    const { currFrom, currTo, amountFrom } = rfqInputs();
    const valid = /^[A-Z0-9]{2,12}$/;
    if (!valid.test(currFrom) || !valid.test(currTo)) {
      setRfqStatus('Currencies are 2-12 letters or digits (BTC, ETH, USDT…).', 'error');
      return;
    }
    if (currFrom === currTo) {
      setRfqStatus('Choose two different currencies.', 'error');
      return;
    }
    if (!isPositiveAmount(amountFrom)) {
      if (rfqState.started) rfqSend('stopSession');
      rfqState.started = false;
      clearOffer();
      setRfqStatus(amountFrom ? 'Enter a positive number, e.g. 0.5' : 'Enter an amount to get a quote.',
        amountFrom ? 'error' : 'info');
      return;
    }
    if (!rfq.open || !rfqState.uuid) {
      setRfqStatus('Waiting for the /rfq connection…', 'info');
      return;
    }
    const sent = rfqSend(rfqState.started ? 'updateSession' : 'startSession',
      { currFrom, currTo, amountFrom });
    if (sent) {
      rfqState.started = true;
      setRfqStatus(`Quoting ${amountFrom} ${currFrom} → ${currTo}…`, 'info');
    }
  }

  function scheduleRequote() {
    clearTimeout(rfqState.debounce);
    rfqState.debounce = setTimeout(requote, 250);
  }

  function renderOffer(offer) {
    rfqState.offer = offer;
    $('rfq-offer').dataset.state = 'live';
    $('offer-amount-to').textContent = String(offer.amountTo);
    $('offer-curr-to').textContent = offer.currTo || rfqInputs().currTo;
    const from = offer.currFrom || rfqInputs().currFrom;
    const to = offer.currTo || rfqInputs().currTo;
    $('offer-rate').textContent = `1 ${from} = ${offer.exchangeRate} ${to}`;
    $('offer-commission').textContent = `${offer.comissionFee}%`;
    setRfqStatus(`Offer for ${offer.amountFrom} ${from} (quote ${shortHex(offer.quoteId)})`, 'ok');
    updateCountdown();
  }

  function updateCountdown() {
    const offer = rfqState.offer;
    if (!offer) return;
    const left = (Number(offer.expiresAt) - serverNow()) / 1000;
    const live = left > 0;
    $('offer-countdown').textContent = live ? `${left.toFixed(1)} s` : 'expired';
    $('rfq-offer').dataset.state = live ? 'live' : 'expired';
    $('rfq-accept').disabled = !live || rfqState.accepting !== null || !rfq.open;
  }
  setInterval(updateCountdown, 100);

  function onRfq(msg) {
    if (typeof msg.handshake === 'string') {
      rfqState.uuid = msg.handshake;
      rfqState.started = false;
      rfqState.accepting = null;
      clearOffer();
      requote();
      return;
    }
    if (msg.status === 'error') {
      const message = (msg.error && msg.error.message) || 'error';
      setRfqStatus(message, 'error');
      return;
    }
    if (msg.key !== undefined && msg.key !== rfqKey) return;
    switch (msg.action) {
      case 'connected':
        setRfqStatus('Session started, waiting for the first offer…', 'info');
        break;
      case 'offer':
        renderOffer(msg);
        break;
      case 'offer-failed':
        clearOffer();
        setRfqStatus(msg.message || 'Offer failed.', 'error');
        break;
      case 'timeout':
        rfqState.started = false;
        clearOffer();
        setRfqStatus(`${msg.message || 'No offer accepted.'} Edit the amount to quote again.`, 'info');
        break;
      case 'orderSuccess': {
        const done = rfqState.accepting || {};
        rfqState.accepting = null;
        rfqState.started = false; // the hub ends the session after a fill
        clearOffer();
        showResult('success', 'orderSuccess', [
          `${msg.amountFrom} ${done.currFrom || ''} → ${msg.amountTo} ${done.currTo || ''}`,
          `rate ${msg.exchangeRate} · provider ${msg.provider || '—'}`,
          `trade ${msg.tradeId} · quote ${msg.quoteId}`,
        ]);
        setRfqStatus('Filled. Edit the amount for a new quote.', 'ok');
        break;
      }
      case 'orderFailed':
        rfqState.accepting = null;
        showResult('failed', 'orderFailed', [msg.message || 'Order failed.']);
        updateCountdown();
        break;
      default:
        break;
    }
  }

  const rfq = new ReconnectingSocket('rfq', '/rfq', {
    onOpen() {
      setRfqStatus('Connected; waiting for the handshake…', 'info');
    },
    onDown() {
      rfqState.uuid = null;
      rfqState.started = false;
      rfqState.accepting = null;
      clearOffer();
      setRfqStatus('The /rfq connection is down; quotes resume when it is back.', 'error');
    },
    onMessage: onRfq,
  });

  $('rfq-accept').addEventListener('click', () => {
    const offer = rfqState.offer;
    if (!offer || rfqState.accepting) return;
    if (rfqSend('acceptOffer', { quoteId: offer.quoteId })) {
      rfqState.accepting = offer;
      $('rfq-accept').disabled = true;
      showResult('pending', 'Accepting…', [`quote ${offer.quoteId}`]);
    }
  });
  $('rfq-flip').addEventListener('click', () => {
    const from = $('rfq-from').value;
    $('rfq-from').value = $('rfq-to').value;
    $('rfq-to').value = from;
    scheduleRequote();
  });
  for (const id of ['rfq-from', 'rfq-to', 'rfq-amount']) {
    $(id).addEventListener('input', scheduleRequote);
  }
  $('rfq-form').addEventListener('submit', (event) => {
    event.preventDefault();
    requote();
  });

  // -- hub stats --------------------------------------------------------------------------

  let statsOkAt = 0;

  async function pollStats() {
    try {
      const resp = await fetch('/stats', { cache: 'no-store' });
      if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
      renderStats(await resp.json());
      statsOkAt = Date.now();
      $('stats-age').textContent = `updated ${clock(statsOkAt)}`;
      $('stats-age').classList.remove('error');
    } catch (err) {
      $('stats-age').textContent = `unreachable (${err.message || err})`;
      $('stats-age').classList.add('error');
    }
  }

  function renderStats(stats) {
    $('stat-connections').textContent = `${stats.connections} (total ${stats.connections_total})`;
    $('stat-messages-out').textContent = String(stats.messages_out);
    $('stat-subscriptions').textContent = String(stats.subscriptions);
    $('stat-uptime').textContent = duration(stats.uptime_s);
    const sources = Object.entries(stats.sources || {});
    $('demo-badge').hidden = !sources.some(([, st]) => st.demo);
    $('sources').tBodies[0].replaceChildren(...sources.map(([name, st]) => el('tr', {},
      el('th', { scope: 'row' }, name, st.demo ? el('span', { class: 'tag tag-demo', text: 'demo' }) : null),
      el('td', {}, el('span', { class: `state state-${st.state}`, text: st.state })),
      el('td', { class: 'num', text: String(st.messages) }),
      el('td', { class: 'muted detail', text: st.detail || '' }))));
  }

  // -- start ------------------------------------------------------------------------------

  if (API_KEY) {
    $('key-info').textContent = `key ${API_KEY.slice(0, 10)}…`;
    $('key-info').title = 'API key from the page URL (?api_key=), sent to both sockets';
  } else {
    $('key-info').textContent = 'anonymous';
    $('key-info').title = 'Open the page with ?api_key=<key> to authenticate (accepting a quote needs the rfq scope)';
  }
  for (const symbol of loadSymbols()) {
    const normal = normalizeSymbol(symbol);
    if (normal) addTickerRow(normal);
  }
  $('tickers-empty').hidden = tickers.size > 0;
  const first = tickers.values().next().value;
  if (first) setChart(first.symbol, chartState.interval);
  window.addEventListener('online', () => { native.nudge(); rfq.nudge(); });
  native.connect();
  rfq.connect();
  pollStats();
  setInterval(pollStats, STATS_EVERY_MS);
})();
