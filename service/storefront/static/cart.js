// The cart page: the drawer's content on a page of its own.

import { renderCart } from "./cartview.js";
import { byId } from "./dom.js";
import "./layout.js";
import { subscribe } from "./store.js";

subscribe((state) => {
  renderCart(byId("cart-page-body"), { focusFallback: byId("main") });
  byId("cart-page-actions").hidden = !state.cart.items.length || state.cart.status === "checkout";
});
