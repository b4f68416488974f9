/* cryptowire dashboard: the BBO row, the best bid and offer of the selected symbol across
 * venues (bbo:<SYMBOL>, PROTOCOLS.md 4.5, docs/protocol.md).
 *
 * Every frame carries the whole state: {symbol, bid: {price, size, venue} | null, ask: ...,
 * venues: {<venue>: {bid: [p, s] | null, ask: [p, s] | null, ts}}, excluded: {<venue>:
 * "waiting" | "gap" | "stale"}}. The row shows the best bid and ask and the venue each comes
 * from, and each venue's own best (or why it is out). Prices and sizes are the hub's strings,
 * shown as received. app.js owns the socket and hands this file the frames of bbo: channels.
 */
(() => {
  'use strict';

  /** Display names of the venues (the names bbo frames use: the @ suffixes, Bybit's
   * perpetuals as "bybit"). */
  const VENUE_NAMES = {
    bybit: 'Bybit', linear: 'Bybit', 'bybit-spot': 'Bybit spot', spot: 'Bybit spot',
    binance: 'Binance', 'binance-spot': 'Binance spot', okx: 'OKX', 'okx-spot': 'OKX spot',
  };

  function venueName(venue) {
    return VENUE_NAMES[venue] || String(venue);
  }

  class BboView {
    /**
     * @param {{root: HTMLElement, request: (op: string, args: string[], extra: object|null,
     *          callback: Function|null) => void}} parts
     */
    constructor(parts) {
      Object.assign(this, parts);
      this.q = (name) => this.root.querySelector(`[data-part="${name}"]`);
      this.channel = null;
      this.frames = 0;
      this.setState('idle', '');
    }

    setState(state, text) {
      this.root.dataset.state = state;
      this.q('msg').textContent = text;
    }

    /** Show ``symbol``'s bbo (null: none); a symbol written with @venue is its base. */
    setSymbol(symbol) {
      const base = symbol ? symbol.split('@')[0] : null;
      const channel = base ? `bbo:${base}` : null;
      if (channel === this.channel) return;
      if (this.channel) this.request('unsubscribe', [this.channel], null, null);
      this.channel = channel;
      this.q('symbol').textContent = base || '—';
      this.clear();
      this.subscribe();
    }

    clear() {
      this.frames = 0;
      for (const side of ['bid', 'ask']) {
        this.q(`${side}-price`).textContent = '—';
        this.q(`${side}-size`).textContent = '';
        this.q(`${side}-venue`).textContent = '';
        delete this.root.dataset[`${side}Venue`];
      }
      this.q('venues').replaceChildren();
    }

    subscribe() {
      const channel = this.channel;
      if (!channel) {
        this.setState('idle', '');
        return;
      }
      this.setState('waiting', `Subscribing to ${channel}…`);
      this.request('subscribe', [channel], null, (reply) => {
        if (channel !== this.channel) return;
        const rejected = (reply.rejected || [])[0];
        if (rejected || reply.success === false) {
          this.setState('rejected', rejected ? rejected.reason : (reply.message || 'rejected'));
        }
      });
    }

    stale(reason) {
      if (this.channel) this.setState('stale', `${this.channel}: ${reason}`);
    }

    /** A frame of a bbo: channel (app.js routes them here); drawn at once. */
    onFrame(channel, frame) {
      if (channel !== this.channel) return;
      const data = frame.data;
      if (!data || typeof data !== 'object' || !data.venues) return;
      this.frames += 1;
      this.root.dataset.frames = String(this.frames);
      for (const side of ['bid', 'ask']) {
        const best = data[side];
        this.q(`${side}-price`).textContent = best ? String(best.price) : '—';
        this.q(`${side}-size`).textContent = best ? String(best.size) : '';
        this.q(`${side}-venue`).textContent = best ? venueName(best.venue) : '';
        if (best) this.root.dataset[`${side}Venue`] = best.venue;
        else delete this.root.dataset[`${side}Venue`];
      }
      const parts = Object.entries(data.venues).map(([venue, entry]) => {
        const show = (pair) => (Array.isArray(pair) ? String(pair[0]) : '—');
        return Object.assign(document.createElement('span'), {
          className: 'bbo-venue',
          textContent: `${venueName(venue)} ${show(entry.bid)} / ${show(entry.ask)}`,
          title: `${venue}: last book update ${new Date(entry.ts).toISOString()}`,
        });
      });
      for (const [venue, why] of Object.entries(data.excluded || {})) {
        const out = document.createElement('span');
        out.className = 'bbo-venue out';
        out.dataset.venue = venue;
        out.textContent = `${venueName(venue)} ${why}`;
        out.title = why === 'stale' ? 'no book update for bbo.stale_after_ms: left out'
          : why === 'gap' ? 'its book is unknown until the next snapshot: left out'
            : 'no book yet';
        parts.push(out);
      }
      this.q('venues').replaceChildren(...parts);
      const none = !data.bid && !data.ask;
      this.setState(none ? 'empty' : 'live', none
        ? `${this.channel}: no venue has a current book.`
        : `${this.channel}: best of ${Object.keys(data.venues).length} venue(s).`);
    }
  }

  window.CryptowireBbo = BboView;
  window.CryptowireVenueName = venueName;
})();
