// Building the page from data: elements and text nodes only, never HTML from strings (the
// pages require Trusted Types, so assigning a string as HTML would throw).

export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") element.addEventListener(name.slice(2), value);
    else if (name === "class") element.className = value;
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : String(child));
  }
}

export const byId = (id) => document.getElementById(id);

// Re-render `container` with `children`, keeping the keyboard focus on the element with the
// same data-key (a quantity button), or on `fallback` when that element is gone.
export function replaceKeepingFocus(container, children, fallback = null) {
  const active = document.activeElement;
  const key = active && container.contains(active) ? active.dataset.key : null;
  container.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
  if (!key) return;
  const again = container.querySelector(`[data-key="${CSS.escape(key)}"]`);
  (again || fallback)?.focus();
}

// A random key for Idempotency-Key: crypto.randomUUID needs a secure context, this does not.
export function randomKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
