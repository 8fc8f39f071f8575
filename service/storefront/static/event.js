// The event page: its tiers (GET /api/events/{id}/tiers), prices, seats left and sale status,
// kept current while the page is visible, and "add to cart" for each tier.

import { api, explain, serverNow } from "./api.js";
import { byId, h } from "./dom.js";
import { dateTime, money, number, t } from "./i18n.js";
import { announce, dismiss, notify, openDrawer } from "./layout.js";
import { addItem, store, subscribe } from "./store.js";

const REFRESH_SECONDS = 20; // seats left change with every buyer
const FEW_LEFT = 20;
const eventId = decodeURIComponent(location.pathname.split("/")[2] || "");
const list = byId("tiers");
const cards = new Map(); // tier id -> {tier, parts of its card}
let refreshing = null;
let adding = false; // an add of this page is under way (it asks for the seats left itself)

async function load() {
  clearTimeout(refreshing);
  try {
    const catalogue = await api("GET", `/api/events/${encodeURIComponent(eventId)}/tiers`, { cache: "no-cache" });
    show(catalogue.tiers);
    byId("event-status").textContent = "";
  } catch (error) {
    if (error.status === 404 || error.status === 422) {
      list.replaceChildren();
      byId("event-status").replaceChildren(h("p", { class: "callout" }, t("event.notFound")));
      return;
    }
    byId("event-status").replaceChildren(
      h("p", { class: "callout error" }, explain(error), " ", h("button", { type: "button", class: "link-button", onclick: load }, t("common.retry"))),
    );
  } finally {
    list.removeAttribute("aria-busy");
  }
  if (document.visibilityState === "visible") refreshing = setTimeout(load, REFRESH_SECONDS * 1000);
}

function show(tiers) {
  if (!tiers.length) {
    list.replaceChildren();
    byId("event-status").replaceChildren(h("p", { class: "callout" }, t("event.nothingOnSale")));
    return;
  }
  const same = tiers.length === cards.size && tiers.every((tier) => cards.has(tier.id));
  if (!same) {
    cards.clear();
    list.replaceChildren(...tiers.map(card));
  }
  for (const tier of tiers) update(tier);
}

function card(tier) {
  const id = tier.id;
  const parts = {
    name: h("h2", { class: "tier-name", id: `name-${id}` }),
    price: h("p", { class: "tier-price" }),
    availability: h("p", { class: "tier-availability", id: `avail-${id}` }),
    window: h("p", { class: "hint", id: `window-${id}` }),
    quantity: h("input", {
      id: `qty-${id}`,
      name: "quantity",
      type: "number",
      inputmode: "numeric",
      min: 1,
      value: 1,
      required: true,
      "aria-describedby": `avail-${id} limit-${id} error-${id}`,
    }),
    limit: h("p", { class: "hint", id: `limit-${id}` }),
    button: h("button", { type: "submit", class: "button primary" }, t("event.add")),
    error: h("p", { class: "field-message", id: `error-${id}`, role: "alert" }),
  };
  const form = h(
    "form",
    { class: "add-form", novalidate: true, "aria-labelledby": `name-${id}`, onsubmit: (event) => add(event, id) },
    h("div", { class: "field" }, h("label", { for: `qty-${id}` }, t("event.quantity")), parts.quantity),
    parts.button,
  );
  cards.set(id, { tier, parts });
  return h(
    "li",
    { class: "tier", id: `tier-${id}`, "data-tier": id },
    h("div", { class: "tier-head" }, parts.name, parts.price),
    parts.availability,
    parts.window,
    form,
    parts.limit,
    parts.error,
  );
}

function availabilityText(tier) {
  switch (tier.status) {
    case "on-sale":
      return tier.available < FEW_LEFT
        ? t("event.fewLeft", { count: tier.available, available: number(tier.available) })
        : t("event.left", { count: tier.available, available: number(tier.available) });
    case "sold-out":
      return t("event.soldOut");
    case "not-open":
      return tier.sales_start ? t("event.opensAt", { at: dateTime(tier.sales_start) }) : t("event.notOpen");
    case "closed":
      return t("event.closed");
    default:
      return t("event.inactive");
  }
}

function update(tier) {
  const entry = cards.get(tier.id);
  entry.tier = tier;
  const { parts } = entry;
  parts.name.textContent = tier.name;
  parts.price.textContent = money(tier.price, tier.currency);
  parts.availability.textContent = availabilityText(tier);
  parts.availability.dataset.status = tier.status;
  parts.availability.classList.toggle("few", tier.status === "on-sale" && tier.available < FEW_LEFT);
  parts.window.textContent = tier.status === "on-sale" && tier.sales_end ? t("event.until", { at: dateTime(tier.sales_end) }) : "";
  parts.window.hidden = !parts.window.textContent;
  parts.quantity.max = tier.max_per_order;
  parts.limit.textContent = t("event.limit", { count: tier.max_per_order, limit: number(tier.max_per_order) });
  const onSale = tier.status === "on-sale";
  parts.quantity.disabled = !onSale;
  if (!parts.button.dataset.waitUntil) parts.button.disabled = !onSale;
  if (tier.status === "not-open" && tier.sales_start) reloadAt(tier.sales_start);
}

// The page asks again when a tier's sale opens, so its button comes alive on time.
let opening = null;
function reloadAt(iso) {
  const wait = Date.parse(iso) - serverNow();
  if (wait <= 0 || wait > 24 * 3600 * 1000 || opening !== null) return;
  opening = setTimeout(() => {
    opening = null;
    load();
  }, wait + 500);
}

function inCart(tierId) {
  return store.cart?.items.find((item) => item.tier_id === tierId)?.quantity || 0;
}

async function add(event, tierId) {
  event.preventDefault();
  const { tier, parts } = cards.get(tierId);
  const quantity = Number(parts.quantity.value);
  parts.error.textContent = "";
  parts.quantity.removeAttribute("aria-invalid");
  if (!Number.isInteger(quantity) || quantity < 1) {
    parts.error.textContent = t("event.quantityInvalid");
    parts.quantity.setAttribute("aria-invalid", "true");
    parts.quantity.focus();
    return;
  }
  parts.button.disabled = true;
  parts.button.setAttribute("aria-busy", "true");
  adding = true;
  let retryAfter = 0;
  try {
    await addItem(tierId, quantity);
    const message = t("event.added", { count: quantity, quantity: number(quantity), tier: tier.name });
    notify(message, { kind: "success", key: "added", action: { label: t("cart.view"), run: openDrawer } });
    announce(message);
  } catch (error) {
    dismiss("added"); // an earlier add's "added" notice would read as this one's outcome
    parts.error.textContent = explain(error, { tier: tier.name, inCart: inCart(tierId), salesStart: tier.sales_start });
    parts.quantity.setAttribute("aria-invalid", "true");
    if (error.code === "rate-limited") retryAfter = error.retryAfter || 1;
  } finally {
    adding = false;
    parts.button.removeAttribute("aria-busy");
    if (retryAfter) holdButton(parts.button, retryAfter);
    else parts.button.disabled = false;
    load();
  }
}

// Rate limited: the button waits as long as the server asked.
function holdButton(button, seconds) {
  button.dataset.waitUntil = String(Date.now() + seconds * 1000);
  button.disabled = true;
  setTimeout(() => {
    delete button.dataset.waitUntil;
    button.disabled = false;
  }, seconds * 1000);
}

// The cart changed without this page (a hold ended, another tab): its seats are back on
// sale or taken, so the seats left are asked again.
let cartCount = null;
subscribe(({ cart }) => {
  if (cartCount !== null && cart.item_count !== cartCount && !adding) load();
  cartCount = cart.item_count;
});

document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible") load();
});

load();
