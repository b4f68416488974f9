/* cryptowire dashboard: the candle chart (TradingView lightweight-charts, vendored under
 * /static/vendor/). Rendering only: app.js chooses the kline channel and feeds its frames.
 *
 * The chart is a picture: it plots numbers, Number(text), on a canvas. The legend above it
 * shows the last candle's exact strings, as the hub sent them.
 */
(() => {
  'use strict';

  const DECIMAL = /^([+-])?(\d+)(?:\.(\d+))?$/;

  function decimalsOf(text) {
    const m = DECIMAL.exec(String(text));
    return m && m[3] ? Math.min(m[3].length, 12) : 0;
  }

  class CandleChart {
    /** @param {HTMLElement} box the chart's container  @param {HTMLElement} legend */
    constructor(box, legend) {
      this.box = box;
      this.legend = legend;
      this.chart = null;
      this.series = null;
      this.bars = 0; // candles drawn
      this.updates = 0; // kline frames applied
      this.lastTime = null; // openTime (s) of the last candle
      this.precision = null;
    }

    /** Create the chart on first use; false when the library did not load. */
    ensure() {
      if (this.chart) return true;
      const LC = window.LightweightCharts;
      if (!LC) return false;
      const css = getComputedStyle(document.documentElement);
      const color = (name) => css.getPropertyValue(name).trim();
      this.chart = LC.createChart(this.box, {
        autoSize: true,
        // The attribution is a link under the chart (index.html): the library's own logo
        // injects a <style> element, which the page's CSP (style-src 'self') refuses.
        layout: { background: { type: 'solid', color: color('--card') },
          textColor: color('--muted'), fontFamily: getComputedStyle(document.body).fontFamily,
          attributionLogo: false },
        grid: { vertLines: { color: color('--line') }, horzLines: { color: color('--line') } },
        rightPriceScale: { borderColor: color('--line') },
        timeScale: { borderColor: color('--line'), timeVisible: true, secondsVisible: false },
      });
      const up = color('--up');
      const down = color('--down');
      this.series = this.chart.addSeries(LC.CandlestickSeries, {
        upColor: up, downColor: down, borderUpColor: up, borderDownColor: down,
        wickUpColor: up, wickDownColor: down,
      });
      return true;
    }

    showCounts() {
      this.box.dataset.bars = String(this.bars);
      this.box.dataset.updates = String(this.updates);
    }

    /** Forget every candle (another symbol or interval). */
    reset() {
      this.bars = 0;
      this.updates = 0;
      this.lastTime = null;
      this.precision = null;
      if (this.series) this.series.setData([]);
      this.legend.textContent = '—';
      delete this.box.dataset.close;
      this.showCounts();
    }

    /** Apply one kline frame's data (a candle, or a list of them). */
    apply(data) {
      if (!this.series) return;
      for (const k of Array.isArray(data) ? data : [data]) {
        if (!k || typeof k !== 'object') continue;
        const time = Math.floor(Number(k.openTime) / 1000);
        if (!Number.isFinite(time) || (this.lastTime !== null && time < this.lastTime)) {
          continue; // lightweight-charts only appends or replaces the last candle
        }
        if (this.precision === null) {
          this.precision = decimalsOf(k.close);
          this.series.applyOptions({ priceFormat: { type: 'price', precision: this.precision,
            minMove: 1 / 10 ** this.precision } });
        }
        this.series.update({ time, open: Number(k.open), high: Number(k.high),
          low: Number(k.low), close: Number(k.close) });
        if (this.lastTime !== time) this.bars += 1;
        this.lastTime = time;
        this.updates += 1;
        const utc = new Date(time * 1000).toISOString().slice(0, 16).replace('T', ' ');
        this.legend.textContent = `${utc} UTC  O ${k.open}  H ${k.high}  L ${k.low}`
          + `  C ${k.close}  V ${k.volume}`;
        this.box.dataset.close = String(k.close);
      }
      this.showCounts();
    }
  }

  window.CryptowireCandleChart = CandleChart;
})();
