// The cart's lines and totals, as the drawer, the cart page and the checkout summary show them.

import { explain } from "./api.js";
import { h, replaceKeepingFocus } from "./dom.js";
import { money, number, t } from "./i18n.js";
import { removeItem, setQuantity, store } from "./store.js";

export function totals(cart) {
  const currency = cart.currency;
  return h(
    "dl",
    { class: "totals" },
    h("div", { class: "row" }, h("dt", {}, t("cart.subtotal")), h("dd", {}, money(cart.subtotal, currency))),
    cart.discount > 0 || cart.promo_code
      ? h(
          "div",
          { class: "row discount" },
          h("dt", {}, cart.promo_code ? t("cart.discountCode", { code: cart.promo_code }) : t("cart.discount")),
          h("dd", {}, cart.discount > 0 ? "−" + money(cart.discount, currency) : money(0, currency)),
        )
      : null,
    h("div", { class: "row total" }, h("dt", {}, t("cart.total")), h("dd", {}, money(cart.total, currency))),
  );
}

function expiredNote() {
  if (!store.expired) return null;
  return h(
    "div",
    { class: "callout warning" },
    h("p", {}, t("hold.expiredNotice")),
    store.expiredEvents.map((eventId) => h("p", {}, h("a", { href: `/events/${eventId}` }, t("hold.chooseAgain")))),
  );
}

export function emptyCart() {
  return [expiredNote(), h("p", { class: "empty" }, t("cart.empty"))];
}

// Render the cart into `container`; `editable` adds the quantity buttons and the remove button.
export function renderCart(container, { editable = true, withTotals = true, focusFallback = null } = {}) {
  const cart = store.cart;
  if (!cart) {
    container.replaceChildren(h("p", { class: "muted" }, t("common.loading")));
    return;
  }
  if (!cart.items.length) {
    replaceKeepingFocus(container, emptyCart(), focusFallback);
    return;
  }
  const locked = cart.status === "checkout";
  replaceKeepingFocus(
    container,
    [
      expiredNote(),
      locked ? h("p", { class: "callout" }, t("cart.inCheckout")) : null,
      h(
        "ul",
        { class: "lines" },
        cart.items.map((item) => line(item, editable && !locked)),
      ),
      withTotals ? totals(cart) : null,
    ],
    focusFallback,
  );
}

function line(item, editable) {
  const error = h("p", { class: "line-error", role: "alert" });
  const li = h(
    "li",
    { class: "line", "data-tier": item.tier_id },
    h(
      "div",
      { class: "line-main" },
      h("a", { class: "line-name", href: `/events/${item.event_id}` }, item.name),
      h("span", { class: "line-unit" }, t("cart.unitPrice", { price: money(item.unit_price, item.currency) })),
    ),
    editable ? stepper(item, error) : h("span", { class: "line-quantity" }, t("cart.times", { quantity: number(item.quantity) })),
    h("span", { class: "line-total" }, money(item.line_total, item.currency)),
    error,
  );
  return li;
}

function stepper(item, error) {
  const atMax = item.quantity >= item.max_per_order;
  const change = async (quantity, button) => {
    if (button.getAttribute("aria-disabled") === "true") {
      error.textContent =
        quantity < 1
          ? t("cart.useRemove")
          : explain({ code: "limit-exceeded", problem: { what: "per-order", limit: item.max_per_order } }, { tier: item.name });
      return;
    }
    const row = button.closest(".line");
    row.classList.add("busy");
    row.setAttribute("aria-busy", "true");
    error.textContent = "";
    try {
      if (quantity === 0) await removeItem(item.tier_id);
      else await setQuantity(item.tier_id, quantity);
      announce(quantity === 0 ? t("cart.removed", { tier: item.name }) : t("cart.quantityNow", { tier: item.name, count: quantity, quantity: number(quantity) }));
    } catch (failure) {
      error.textContent = explain(failure, { tier: item.name, inCart: item.quantity });
    } finally {
      row.classList.remove("busy");
      row.removeAttribute("aria-busy");
    }
  };
  return h(
    "div",
    { class: "stepper" },
    h(
      "button",
      {
        type: "button",
        class: "step",
        "data-key": `dec:${item.tier_id}`,
        "aria-label": t("cart.decrease", { tier: item.name }),
        "aria-disabled": item.quantity <= 1 ? "true" : null,
        onclick: (event) => change(item.quantity - 1, event.currentTarget),
      },
      "−",
    ),
    h("span", { class: "quantity", "aria-label": t("cart.quantityOf", { tier: item.name, quantity: number(item.quantity) }) }, number(item.quantity)),
    h(
      "button",
      {
        type: "button",
        class: "step",
        "data-key": `inc:${item.tier_id}`,
        "aria-label": t("cart.increase", { tier: item.name }),
        "aria-disabled": atMax ? "true" : null,
        onclick: (event) => change(item.quantity + 1, event.currentTarget),
      },
      "+",
    ),
    h(
      "button",
      {
        type: "button",
        class: "link-button remove",
        "data-key": `rm:${item.tier_id}`,
        "aria-label": t("cart.removeLine", { tier: item.name }),
        onclick: (event) => change(0, event.currentTarget),
      },
      t("cart.remove"),
    ),
  );
}

// Said once by screen readers, politely (the live region in the layout).
export function announce(message) {
  const region = document.getElementById("announcer");
  if (!region) return;
  region.textContent = "";
  setTimeout(() => {
    region.textContent = message;
  }, 50);
}
