// The order confirmation: /orders/{id}#t=<access token>. The token stays in the fragment,
// which a browser never sends: not to this server's logs, not in a Referer (the pages send
// none anyway). The page reads it and sends it in X-Order-Token.

import { api, explain } from "./api.js";
import { totals } from "./cartview.js";
import { byId, h } from "./dom.js";
import { dateTime, money, number, t } from "./i18n.js";
import { announce } from "./layout.js";

const orderId = decodeURIComponent(location.pathname.split("/")[2] || "");
const message = byId("order-message");
const body = byId("order-body");

async function load() {
  const token = new URLSearchParams(location.hash.slice(1)).get("t");
  body.hidden = true;
  byId("order-title").textContent = t("order.heading");
  if (!token) {
    message.replaceChildren(h("p", { class: "callout" }, t("order.needLink")));
    return;
  }
  message.replaceChildren(h("p", { class: "muted" }, t("common.loading")));
  try {
    const order = await api("GET", `/api/orders/${encodeURIComponent(orderId)}`, { headers: { "X-Order-Token": token } });
    message.replaceChildren();
    show(order);
  } catch (error) {
    const text = error.status === 404 || error.status === 422 ? t("order.notFound") : explain(error);
    message.replaceChildren(
      h("p", { class: "callout error" }, text),
      error.status >= 500 || error.code === "network" || error.code === "rate-limited"
        ? h("button", { type: "button", class: "button", onclick: load }, t("common.retry"))
        : null,
    );
  }
}

function copyButton(value, label) {
  return h(
    "button",
    {
      type: "button",
      class: "link-button copy",
      "aria-label": t("order.copyWhat", { what: label }),
      onclick: async () => {
        try {
          await navigator.clipboard.writeText(value);
          announce(t("order.copied", { what: label }));
        } catch {
          announce(t("order.copyFailed"));
        }
      },
    },
    t("order.copy"),
  );
}

function paymentPanel(order) {
  const payment = order.payment;
  const amount = money(payment.amount, order.currency);
  const due = dateTime(payment.due_at);
  const panel = h(
    "section",
    { class: "panel payment", "aria-labelledby": "payment-title" },
    h("h2", { id: "payment-title" }, t("order.payTitle")),
    h("p", {}, t("order.payIntro", { due })),
    h(
      "dl",
      { class: "pay-facts" },
      // The account to pay into, when the operator configured one (else the order has none).
      payment.bank_name || payment.bank_id ? h("div", { class: "row" }, h("dt", {}, t("order.bank")), h("dd", {}, payment.bank_name || payment.bank_id)) : null,
      payment.account_number
        ? h(
            "div",
            { class: "row" },
            h("dt", {}, t("order.accountNumber")),
            h("dd", {}, h("code", { id: "account-number" }, payment.account_number), " ", copyButton(payment.account_number, t("order.accountNumber"))),
          )
        : null,
      payment.account_name ? h("div", { class: "row" }, h("dt", {}, t("order.accountName")), h("dd", {}, payment.account_name)) : null,
      h("div", { class: "row" }, h("dt", {}, t("order.amount")), h("dd", {}, h("strong", {}, amount), " ", copyButton(String(payment.amount), t("order.amount")))),
      h(
        "div",
        { class: "row" },
        h("dt", {}, t("order.payCode")),
        h("dd", {}, h("code", { class: "pay-code", id: "payment-code" }, payment.code), " ", copyButton(payment.code, t("order.payCode"))),
      ),
      h("div", { class: "row" }, h("dt", {}, t("order.due")), h("dd", {}, h("time", { datetime: payment.due_at }, due))),
    ),
  );
  // A VietQR image of the transfer, only when the operator configured a bank account (the
  // order then carries its URL); an image that cannot load leaves the facts above.
  if (payment.qr_url) {
    const figure = h(
      "figure",
      { class: "qr" },
      h("img", {
        src: payment.qr_url,
        alt: t("order.qrAlt", { amount, code: payment.code }),
        width: 240,
        height: 240,
        onerror: () => figure.remove(),
      }),
      h("figcaption", {}, t("order.qrCaption")),
    );
    panel.append(figure);
  }
  return panel;
}

function ticketsPanel(order) {
  const names = new Map(order.items.map((item) => [item.tier_id, item.name]));
  return h(
    "section",
    { class: "panel tickets", "aria-labelledby": "tickets-title" },
    h("h2", { id: "tickets-title" }, t("order.tickets", { count: order.tickets.length, tickets: number(order.tickets.length) })),
    order.status === "pending_payment" ? h("p", { class: "hint" }, t("order.ticketsAfterPayment")) : null,
    h(
      "ul",
      { class: "ticket-list" },
      order.tickets.map((ticket) =>
        h(
          "li",
          { class: `ticket ${ticket.status}` },
          h("span", { class: "ticket-tier" }, names.get(ticket.tier_id) || ""),
          h("code", { class: "ticket-code" }, ticket.code),
          h("span", { class: "ticket-status" }, t(`order.ticket.${ticket.status}`)),
        ),
      ),
    ),
  );
}

function itemsPanel(order) {
  return h(
    "section",
    { class: "panel", "aria-labelledby": "items-title" },
    h("h2", { id: "items-title" }, t("order.items")),
    h(
      "ul",
      { class: "lines" },
      order.items.map((item) =>
        h(
          "li",
          { class: "line" },
          h("div", { class: "line-main" }, h("span", { class: "line-name" }, item.name), h("span", { class: "line-unit" }, t("cart.unitPrice", { price: money(item.unit_price, order.currency) }))),
          h("span", { class: "line-quantity" }, t("cart.times", { quantity: number(item.quantity) })),
          h("span", { class: "line-total" }, money(item.line_total, order.currency)),
        ),
      ),
    ),
    totals(order),
  );
}

function keepPanel() {
  const link = h("input", { id: "order-link", readonly: true, value: location.href, "aria-describedby": "keep-hint" });
  return h(
    "section",
    { class: "panel keep", "aria-labelledby": "keep-title" },
    h("h2", { id: "keep-title" }, t("order.keepTitle")),
    h("p", { id: "keep-hint" }, t("order.keepHint")),
    h("div", { class: "inline-field" }, h("label", { for: "order-link", class: "visually-hidden" }, t("order.keepTitle")), link, copyButton(location.href, t("order.link"))),
  );
}

function show(order) {
  byId("order-title").textContent = t("order.title", { number: order.number });
  document.title = `${t("order.title", { number: order.number })} · ticket-cart`;
  body.replaceChildren(
    h(
      "div",
      { class: "order-status" },
      h("span", { class: `badge ${order.status}` }, t(`order.status.${order.status}`)),
      h("p", {}, t(`order.intro.${order.status}`, { email: order.email })),
    ),
    order.status === "pending_payment" && order.payment ? paymentPanel(order) : null,
    ticketsPanel(order),
    itemsPanel(order),
    keepPanel(),
  );
  body.hidden = false;
}

window.addEventListener("hashchange", load); // another order link pasted over this one
load();
