// What every page has: the texts in the buyer's language, the header with the cart's item
// count and the reservation countdown, the cart drawer, and notices. Each page's module
// imports this first.

import { explain, remeasureClock, serverNow } from "./api.js";
import { announce, renderCart } from "./cartview.js";
import { byId, h } from "./dom.js";
import { applyTranslations, lang, number, setLang, t } from "./i18n.js";
import { expire, lastSummary, refresh, store, subscribe } from "./store.js";

export { announce };

// -- notices -----------------------------------------------------------------------------------

// A message at the top of the page. kind: "info" | "success" | "warning" | "error"; a notice
// with a key replaces the previous one with that key. `action`: {label, run}.
export function notify(message, { kind = "info", key = null, action = null } = {}) {
  const box = byId("notices");
  if (key) box.querySelector(`[data-key="${CSS.escape(key)}"]`)?.remove();
  const notice = h(
    "div",
    { class: `notice ${kind}`, role: kind === "error" || kind === "warning" ? "alert" : "status", "data-key": key },
    h("p", {}, message),
    action ? h("button", { type: "button", class: "link-button", onclick: action.run }, action.label) : null,
    h("button", {
      type: "button",
      class: "icon-button",
      "aria-label": t("layout.dismiss"),
      onclick: () => notice.remove(),
    }, "×"),
  );
  box.append(notice);
  return notice;
}

export function dismiss(key) {
  byId("notices").querySelector(`[data-key="${CSS.escape(key)}"]`)?.remove();
}

// -- the header's cart button --------------------------------------------------------------------

function showCount(count) {
  byId("cart-count").textContent = number(count);
  byId("cart-button").setAttribute("aria-label", t("layout.cartCount", { count, items: number(count) }));
  byId("cart-button").classList.toggle("has-items", count > 0);
}

// -- the drawer ----------------------------------------------------------------------------------

const drawer = byId("drawer");

export function openDrawer() {
  if (!drawer.open) drawer.showModal();
  drawerView();
  refresh().catch((error) => notify(explain(error), { kind: "error", key: "cart" }));
}

function drawerView() {
  if (!drawer.open) return;
  renderCart(byId("drawer-body"), { focusFallback: byId("drawer-close") });
  const hasItems = Boolean(store.cart?.items.length);
  byId("drawer-checkout").hidden = !hasItems || store.cart.status === "checkout" || document.body.dataset.page === "checkout";
}

function setUpDrawer() {
  byId("cart-button").addEventListener("click", openDrawer);
  byId("drawer-close").addEventListener("click", () => drawer.close());
  drawer.addEventListener("click", (event) => {
    if (event.target === drawer) drawer.close(); // the backdrop
  });
  drawer.addEventListener("close", () => byId("cart-button").focus());
}

// -- the reservation countdown -------------------------------------------------------------------

const WARN_SECONDS = 180; // the last minutes: shown as a warning
const SAY_AT_SECONDS = [300, 180, 60]; // what a screen reader hears: these, and the end
let expiresAt = null;
let ticking = null;
let said = new Set();

function watchHold() {
  const cart = store.cart;
  // Once the page saw the hold end, nothing ticks until the server's answer shows the cart.
  const holding = !store.expired && cart && cart.status === "open" && cart.item_count > 0 && cart.expires_at;
  if (!holding) {
    stopTicking();
    byId("hold").hidden = true;
    return;
  }
  const at = Date.parse(cart.expires_at);
  if (at !== expiresAt) {
    expiresAt = at;
    const left = secondsLeft();
    said = new Set(SAY_AT_SECONDS.filter((s) => s >= left)); // only what is still ahead
    dismiss("hold-warning");
  }
  byId("hold").hidden = false;
  tick();
  ticking ??= setInterval(tick, 1000);
}

function secondsLeft() {
  return Math.max(0, Math.ceil((expiresAt - serverNow()) / 1000));
}

function stopTicking() {
  if (ticking !== null) clearInterval(ticking);
  ticking = null;
  expiresAt = null;
}

function clock(seconds) {
  const minutes = Math.floor(seconds / 60);
  return `${minutes}:${String(seconds % 60).padStart(2, "0")}`;
}

function tick() {
  if (expiresAt === null) return;
  const left = secondsLeft();
  const hold = byId("hold");
  byId("hold-timer").textContent = clock(left);
  hold.classList.toggle("warning", left <= WARN_SECONDS);
  for (const threshold of SAY_AT_SECONDS) {
    if (left <= threshold && !said.has(threshold) && left > 0) {
      said.add(threshold);
      const minutes = Math.ceil(left / 60);
      announce(t("hold.minutesLeft", { count: minutes, minutes: number(minutes) }));
      if (threshold === WARN_SECONDS) notify(t("hold.warning"), { kind: "warning", key: "hold-warning" });
    }
  }
  if (left === 0) {
    stopTicking();
    hold.hidden = true;
    dismiss("hold-warning");
    dismiss("added");
    announce(t("hold.expired"));
    remeasureClock(); // if the server still holds the seats, its answer says so, and when they end
    expire().catch((error) => notify(explain(error), { kind: "error", key: "cart" }));
  }
}

// -- the language ---------------------------------------------------------------------------------

function setUpLanguage() {
  const other = lang() === "vi" ? "en" : "vi";
  const button = byId("lang-switch");
  button.textContent = other === "en" ? "English" : "Tiếng Việt";
  button.lang = other;
  button.addEventListener("click", () => {
    setLang(other);
    location.reload();
  });
}

// -- start --------------------------------------------------------------------------------------

applyTranslations();
setUpLanguage();
setUpDrawer();
const summary = lastSummary();
if (summary) showCount(summary.count);

subscribe(() => {
  showCount(store.cart.item_count);
  watchHold();
  drawerView();
  if (!store.expired) dismiss("expired");
  else if (!byId("notices").querySelector('[data-key="expired"]')) {
    notify(t("hold.expiredNotice"), { kind: "warning", key: "expired" });
  }
});

export const ready = refresh().catch((error) => {
  if (error.code === "invalid-cart-token") {
    // The server dropped the cookie with its refusal: the shop starts again with a new cart.
    notify(explain(error), { kind: "warning", key: "cart" });
    return refresh().catch((again) => notify(explain(again), { kind: "error", key: "cart" }));
  }
  notify(explain(error), { kind: "error", key: "cart" });
});
