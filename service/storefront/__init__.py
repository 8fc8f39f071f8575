"""The reference storefront: the buyer's pages (an event, the cart, checkout, an order),
served by the API itself and calling its JSON API from the browser (docs/storefront.md)."""
