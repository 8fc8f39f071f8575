// The cart as this page knows it, kept in step with the server and with the shop's other tabs.
//
// The server is the truth: every change answers the whole cart, which becomes the state. The
// cart token is an HttpOnly cookie, which no script can read: what other tabs learn (over a
// BroadcastChannel, and in localStorage for a tab opening later) is the item count and the
// hold's expiry, never a secret; they then ask the server for the cart themselves.

import { api } from "./api.js";
import { randomKey } from "./dom.js";

const SUMMARY_KEY = "tc.cart";
const channel = "BroadcastChannel" in window ? new BroadcastChannel("tc.cart") : null;
const listeners = new Set();

export const store = {
  cart: null, // the server's answer, as GET /api/cart shapes it
  expired: false, // the hold ran out on this page's watch (until the cart holds seats again)
  expiredEvents: [], // events whose seats the expiry released: where to choose again
};

export function subscribe(listener) {
  listeners.add(listener);
  if (store.cart) listener(store);
  return () => listeners.delete(listener);
}

function emit() {
  for (const listener of listeners) listener(store);
}

// What another tab published last: {count, expires_at}, for a first paint before the server answers.
export function lastSummary() {
  try {
    const summary = JSON.parse(localStorage.getItem(SUMMARY_KEY) || "null");
    return summary && Number.isInteger(summary.count) ? summary : null;
  } catch {
    return null;
  }
}

function publish(cart) {
  const summary = { count: cart.item_count, expires_at: cart.expires_at, at: Date.now() };
  try {
    localStorage.setItem(SUMMARY_KEY, JSON.stringify(summary));
  } catch {
    // storage full or refused: the channel still tells the open tabs
  }
  channel?.postMessage(summary);
}

export function setCart(cart, { share = true } = {}) {
  store.cart = cart;
  if (cart.item_count > 0) {
    store.expired = false;
    store.expiredEvents = [];
  }
  if (share) publish(cart);
  emit();
}

export async function refresh({ share = false } = {}) {
  const cart = await api("GET", "/api/cart");
  setCart(cart, { share });
  return cart;
}

export async function addItem(tierId, quantity) {
  const cart = await api("POST", "/api/cart/items", {
    body: { tier_id: tierId, quantity },
    headers: { "idempotency-key": randomKey() },
  });
  setCart(cart);
  return cart;
}

export async function setQuantity(tierId, quantity) {
  const cart = await api("PUT", `/api/cart/items/${encodeURIComponent(tierId)}`, { body: { quantity } });
  setCart(cart);
  return cart;
}

export async function removeItem(tierId) {
  const cart = await api("DELETE", `/api/cart/items/${encodeURIComponent(tierId)}`);
  setCart(cart);
  return cart;
}

export async function applyPromo(code) {
  const cart = await api("POST", "/api/cart/promo", { body: { code } });
  setCart(cart);
  return cart;
}

export async function removePromo() {
  const cart = await api("DELETE", "/api/cart/promo");
  setCart(cart);
  return cart;
}

// The hold ran out: remember where its seats were, then show the cart as the server has it.
export async function expire() {
  store.expired = true;
  store.expiredEvents = [...new Set((store.cart?.items || []).map((item) => item.event_id))];
  emit();
  return refresh({ share: true });
}

// The order was placed: the cart is empty now, in every tab.
export function checkedOut() {
  return refresh({ share: true });
}

// Another tab changed the cart: ask the server for it (a failure here is shown by the next
// thing the buyer does, which asks again).
function onOtherTab() {
  refresh().catch(() => {});
}

if (channel) {
  channel.addEventListener("message", onOtherTab);
} else {
  window.addEventListener("storage", (event) => {
    if (event.key === SUMMARY_KEY) onOtherTab();
  });
}
