// The JSON API, as the pages call it: same origin, the cart named by its HttpOnly cookie
// (never by a token the page holds), every refusal an ApiError carrying the server's problem
// document, and explain() saying it to a person.

import { dateTime, money, number, t } from "./i18n.js";

// How far the server's clock is from this device's (ms): the reservation countdown runs on
// the server's time, so a device whose clock is minutes wrong neither ends a hold the server
// keeps nor shows one the server ended. Measured from the Date header of the first answer
// (whole seconds, so a difference under two seconds is taken as none), and again when the
// page believes a hold ended (remeasureClock): the device's clock may have been changed since.
let serverOffsetMs = 0;
let measure = true;

export function serverNow() {
  return Date.now() + serverOffsetMs;
}

export function remeasureClock() {
  measure = true;
}

function noteServerTime(dateHeader, sentAt, receivedAt) {
  const server = Date.parse(dateHeader || "");
  if (!measure || Number.isNaN(server)) return;
  const offset = server + 500 - (sentAt + receivedAt) / 2;
  serverOffsetMs = Math.abs(offset) < 2000 ? 0 : offset;
  measure = false;
}

export class ApiError extends Error {
  constructor(status, problem, retryAfter) {
    super(problem?.detail || (status ? `HTTP ${status}` : "network error"));
    this.status = status;
    this.problem = problem || {};
    this.code = this.problem.code || (status ? `http-${status}` : "network");
    this.retryAfter = retryAfter; // seconds, or null
  }
}

function seconds(header) {
  if (!header) return null;
  const value = Number(header);
  if (Number.isFinite(value)) return Math.max(1, Math.ceil(value));
  const at = Date.parse(header);
  return Number.isNaN(at) ? null : Math.max(1, Math.ceil((at - serverNow()) / 1000));
}

export async function api(method, path, { body, headers = {}, cache = "no-store" } = {}) {
  const sentAt = Date.now();
  let response;
  try {
    response = await fetch(path, {
      method,
      headers: { accept: "application/json", ...(body === undefined ? {} : { "content-type": "application/json" }), ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      cache,
    });
  } catch {
    throw new ApiError(0, null, null);
  }
  noteServerTime(response.headers.get("date"), sentAt, Date.now());
  let data = null;
  if ((response.headers.get("content-type") || "").includes("json")) {
    try {
      data = await response.json();
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    throw new ApiError(response.status, data && typeof data === "object" ? data : null, seconds(response.headers.get("retry-after")));
  }
  return data;
}

// A refusal as a person would want to read it. `context`: {tier: name, inCart: quantity,
// salesStart: ISO time, currency: the cart's} where the page knows them.
export function explain(error, context = {}) {
  const p = error.problem || {};
  const tier = context.tier || t("problem.thisTier");
  switch (error.code) {
    case "sold-out":
      return p.available > 0
        ? t("problem.soldOutSome", { tier, count: p.available, available: number(p.available) })
        : t("problem.soldOut", { tier });
    case "limit-exceeded":
      if (p.what === "lines") return t("problem.limitLines", { limit: number(p.limit) });
      if (p.what === "events") return t("problem.limitEvents", { limit: number(p.limit) });
      return (
        t("problem.limitPerOrder", { tier, limit: number(p.limit), count: p.limit }) +
        (context.inCart ? " " + t("problem.limitInCart", { count: context.inCart, inCart: number(context.inCart) }) : "")
      );
    case "sale-not-open":
      return context.salesStart
        ? t("problem.saleNotOpenAt", { tier, at: dateTime(context.salesStart) })
        : t("problem.saleNotOpen", { tier });
    case "sale-closed":
      return p.reason === "inactive" ? t("problem.inactive", { tier }) : t("problem.saleClosed", { tier });
    case "tier-not-found":
      return t("problem.tierNotFound");
    case "currency-mismatch":
      return t("problem.currencyMismatch");
    case "invalid-promo": {
      if (p.reason === "not-started" && p.starts_at) return t("promo.reason.notStartedAt", { at: dateTime(p.starts_at) });
      if (p.reason === "below-minimum" && Number.isInteger(p.min_subtotal) && context.currency) {
        return t("promo.reason.belowMinimumOf", { min: money(p.min_subtotal, context.currency) });
      }
      const key = `promo.reason.${p.reason}`;
      return t(key) === key ? t("promo.reason.other") : t(key);
    }
    case "promo-exhausted":
      return p.limit === "customer" ? t("promo.reason.customer") : t("promo.reason.exhausted");
    case "cart-empty":
      return t("problem.cartEmpty");
    case "reservation-expired":
      return t("problem.reservationExpired");
    case "checkout-in-progress":
      return t("problem.checkoutInProgress");
    case "checkout-pending":
      return t("problem.checkoutPending");
    case "invalid-cart-token":
      return t("problem.invalidCartToken");
    case "rate-limited":
      return error.retryAfter
        ? t("problem.rateLimited", { count: error.retryAfter, seconds: number(error.retryAfter) })
        : t("problem.rateLimitedSoon");
    case "validation-error":
      return p.field === "email" ? t("checkout.emailInvalid") : t("problem.validation");
    case "unavailable":
      return error.retryAfter
        ? t("problem.unavailableRetry", { count: error.retryAfter, seconds: number(error.retryAfter) })
        : t("problem.unavailable");
    case "not-found":
      return t("problem.notFound");
    case "network":
      return t("problem.network");
    default:
      return error.status >= 500 ? t("problem.server") : t("problem.other", { status: error.status });
  }
}
