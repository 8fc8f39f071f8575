// The checkout page: the order summary, the promo code, the buyer's e-mail and name, and the
// order placed (POST /api/orders) with one Idempotency-Key per attempt, so a retry after a
// lost answer or a 503 gets the same order, never a second one.

import { api, explain } from "./api.js";
import { emptyCart, renderCart, totals } from "./cartview.js";
import { byId, h, randomKey } from "./dom.js";
import { money, t } from "./i18n.js";
import { announce, notify, openDrawer } from "./layout.js";
import { applyPromo, checkedOut, expire, refresh, removePromo, store, subscribe } from "./store.js";

// Good enough to catch a typo; the server's check (email-validator) has the last word.
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
const PENDING_RETRIES = 5;

let checkoutKey = randomKey();
let placing = false;

subscribe(({ cart }) => {
  const empty = !cart.items.length;
  byId("checkout-empty").hidden = !empty;
  byId("checkout-main").hidden = empty;
  if (empty) {
    if (!placing) byId("checkout-empty").replaceChildren(...emptyCart());
    return;
  }
  renderCart(byId("summary-lines"), { editable: false, withTotals: false });
  byId("summary-lines").append(
    h("button", { type: "button", class: "link-button", onclick: openDrawer }, t("checkout.editCart")),
  );
  byId("summary-totals").replaceChildren(...totals(cart).childNodes);
  byId("promo-form").hidden = Boolean(cart.promo_code);
  byId("promo-applied").hidden = !cart.promo_code;
  if (cart.promo_code) {
    byId("promo-applied-text").textContent = t("promo.applied", {
      code: cart.promo_code,
      amount: money(cart.discount, cart.currency),
    });
  }
  if (!placing) byId("place-order").textContent = t("checkout.placeTotal", { total: money(cart.total, cart.currency) });
});

// -- the promo code ------------------------------------------------------------------------------

function fieldError(input, message, text) {
  message.textContent = text;
  if (text) input.setAttribute("aria-invalid", "true");
  else input.removeAttribute("aria-invalid");
}

byId("promo-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = byId("promo-code");
  const message = byId("promo-message");
  const button = byId("promo-apply");
  const code = input.value.trim();
  if (!code) {
    fieldError(input, message, t("promo.enter"));
    input.focus();
    return;
  }
  fieldError(input, message, "");
  button.disabled = true;
  let wait = 0;
  try {
    const cart = await applyPromo(code);
    input.value = "";
    announce(t("promo.applied", { code: cart.promo_code, amount: money(cart.discount, cart.currency) }));
    byId("promo-remove").focus();
  } catch (error) {
    fieldError(input, message, explain(error, { currency: store.cart?.currency }));
    if (error.code === "rate-limited") wait = error.retryAfter || 1;
    input.focus();
  } finally {
    if (wait) setTimeout(() => (button.disabled = false), wait * 1000);
    else button.disabled = false;
  }
});

byId("promo-remove").addEventListener("click", async () => {
  try {
    await removePromo();
    announce(t("promo.removed"));
    byId("promo-code").focus();
  } catch (error) {
    notify(explain(error), { kind: "error", key: "promo" });
  }
});

// -- placing the order ---------------------------------------------------------------------------

function setPlacing(on) {
  placing = on;
  const button = byId("place-order");
  button.disabled = on;
  if (on) {
    button.setAttribute("aria-busy", "true");
    button.textContent = t("checkout.placing");
  } else {
    button.removeAttribute("aria-busy");
    refresh().catch(() => {}); // the label shows the total again
  }
}

function say(text, retry = null) {
  byId("checkout-message").replaceChildren(
    h("p", {}, text),
    retry ? h("button", { type: "button", class: "button", onclick: retry }, t("common.retry")) : null,
  );
}

byId("buyer-form").addEventListener("submit", (event) => {
  event.preventDefault();
  if (placing) return;
  const email = byId("email");
  const name = byId("name");
  say("");
  if (!EMAIL.test(email.value.trim())) {
    fieldError(email, byId("email-message"), t("checkout.emailInvalid"));
    email.focus();
    return;
  }
  fieldError(email, byId("email-message"), "");
  const body = { email: email.value.trim() };
  if (name.value.trim()) body.name = name.value.trim();
  place(body, 1);
});

async function place(body, attempt) {
  setPlacing(true);
  let order;
  try {
    order = await api("POST", "/api/orders", { body, headers: { "idempotency-key": checkoutKey } });
  } catch (error) {
    refused(error, body, attempt);
    return;
  }
  await checkedOut().catch(() => {}); // the other tabs see the cart empty
  const fragment = order.access_token ? "#" + new URLSearchParams({ t: order.access_token }) : "";
  location.replace(`/orders/${encodeURIComponent(order.id)}${fragment}`);
}

function refused(error, body, attempt) {
  const again = () => place(body, 1);
  if (error.code === "checkout-pending" && attempt < PENDING_RETRIES) {
    // The order may exist: the same key asks again, as the server asked.
    say(explain(error));
    setTimeout(() => place(body, attempt + 1), (error.retryAfter || 1) * 1000);
    return;
  }
  setPlacing(false);
  if (error.code === "network" || error.status >= 500) {
    say(explain(error), again); // same key: a lost answer gets its order, not a second one
    return;
  }
  checkoutKey = randomKey(); // refused for good: the next attempt is a new checkout
  if (error.code === "validation-error" && error.problem.field === "email") {
    fieldError(byId("email"), byId("email-message"), explain(error));
    byId("email").focus();
    return;
  }
  say(explain(error));
  if (error.code === "reservation-expired") expire().catch(() => {});
  else refresh().catch(() => {});
}
