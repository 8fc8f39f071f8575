// Every text of the shop in one table, Vietnamese (the default) and English, with the number,
// money and date formats of the buyer's language. A text with a count has its plural forms
// (Intl.PluralRules: Vietnamese has one, English two).

const MESSAGES = {
  vi: {
    "title.event": "Chọn vé · ticket-cart",
    "title.cart": "Giỏ hàng · ticket-cart",
    "title.checkout": "Thanh toán · ticket-cart",
    "title.order": "Đơn hàng · ticket-cart",
    "layout.skip": "Bỏ qua, đến nội dung chính",
    "layout.cart": "Giỏ hàng",
    "layout.close": "Đóng giỏ hàng",
    "layout.dismiss": "Ẩn thông báo",
    "layout.cartCount": "Giỏ hàng, {items} vé",
    "common.loading": "Đang tải…",
    "common.retry": "Thử lại",

    "hold.label": "Giữ chỗ còn",
    "hold.minutesLeft": "Chỉ còn {minutes} phút giữ chỗ cho các vé trong giỏ.",
    "hold.warning": "Sắp hết thời gian giữ chỗ. Hãy thanh toán ngay để không mất vé.",
    "hold.expired": "Đã hết thời gian giữ chỗ.",
    "hold.expiredNotice": "Đã hết thời gian giữ chỗ: các vé trong giỏ đã được trả lại để người khác mua. Bạn có thể chọn lại nếu vẫn còn vé.",
    "hold.chooseAgain": "Chọn lại vé",

    "cart.heading": "Giỏ hàng của bạn",
    "cart.checkout": "Thanh toán",
    "cart.view": "Xem giỏ hàng",
    "cart.subtotal": "Tạm tính",
    "cart.discount": "Giảm giá",
    "cart.discountCode": "Giảm giá (mã {code})",
    "cart.total": "Tổng cộng",
    "cart.empty": "Giỏ hàng đang trống. Mở trang sự kiện để chọn vé.",
    "cart.inCheckout": "Giỏ hàng đang được thanh toán; chưa thể thay đổi.",
    "cart.unitPrice": "{price} / vé",
    "cart.times": "× {quantity}",
    "cart.useRemove": "Để bỏ hạng vé này khỏi giỏ, hãy bấm “Xoá”.",
    "cart.removed": "Đã xoá {tier} khỏi giỏ hàng.",
    "cart.quantityNow": "{tier}: {quantity} vé.",
    "cart.decrease": "Bớt một vé {tier}",
    "cart.increase": "Thêm một vé {tier}",
    "cart.quantityOf": "{tier}: {quantity} vé",
    "cart.removeLine": "Xoá {tier} khỏi giỏ hàng",
    "cart.remove": "Xoá",

    "event.heading": "Chọn vé",
    "event.lede": "Chọn hạng vé và số lượng. Vé trong giỏ được giữ riêng cho bạn trong một thời gian; đồng hồ ở đầu trang cho biết còn bao lâu.",
    "event.notFound": "Không tìm thấy sự kiện này. Hãy kiểm tra lại đường dẫn.",
    "event.nothingOnSale": "Sự kiện này hiện chưa có vé để bán.",
    "event.add": "Thêm vào giỏ",
    "event.quantity": "Số lượng",
    "event.left": "Còn {available} vé",
    "event.fewLeft": "Chỉ còn {available} vé",
    "event.soldOut": "Hết vé",
    "event.opensAt": "Mở bán lúc {at}",
    "event.notOpen": "Chưa mở bán",
    "event.closed": "Đã ngừng bán",
    "event.inactive": "Không mở bán",
    "event.until": "Bán đến {at}",
    "event.limit": "Tối đa {limit} vé mỗi đơn hàng",
    "event.quantityInvalid": "Hãy nhập số lượng vé, từ 1 trở lên.",
    "event.added": "Đã thêm {quantity} vé {tier} vào giỏ hàng.",

    "problem.thisTier": "hạng vé này",
    "problem.soldOut": "Rất tiếc, {tier} đã hết vé.",
    "problem.soldOutSome": "Không đủ vé: {tier} chỉ còn {available} vé.",
    "problem.limitPerOrder": "Mỗi đơn hàng được mua tối đa {limit} vé {tier}.",
    "problem.limitInCart": "Giỏ hàng của bạn đã có {inCart} vé loại này.",
    "problem.limitLines": "Một giỏ hàng giữ được tối đa {limit} hạng vé của một sự kiện.",
    "problem.limitEvents": "Một giỏ hàng giữ được vé của tối đa {limit} sự kiện.",
    "problem.saleNotOpen": "{tier} chưa mở bán.",
    "problem.saleNotOpenAt": "{tier} mở bán lúc {at}.",
    "problem.saleClosed": "{tier} đã ngừng bán.",
    "problem.inactive": "{tier} hiện không mở bán.",
    "problem.tierNotFound": "Hạng vé này không còn tồn tại. Hãy tải lại trang.",
    "problem.currencyMismatch": "Giỏ hàng chỉ chứa vé tính bằng một loại tiền. Hãy thanh toán giỏ hiện tại trước.",
    "problem.cartEmpty": "Giỏ hàng đang trống.",
    "problem.reservationExpired": "Đã hết thời gian giữ chỗ cho một số vé trong giỏ. Hãy chọn lại vé.",
    "problem.checkoutInProgress": "Giỏ hàng đang được thanh toán. Vui lòng thử lại sau giây lát.",
    "problem.checkoutPending": "Đơn hàng đang được xác nhận, vé vẫn được giữ cho bạn. Đang thử lại…",
    "problem.invalidCartToken": "Giỏ hàng trước của bạn không còn dùng được nữa; một giỏ hàng mới đã được bắt đầu. Hãy chọn lại vé.",
    "problem.rateLimited": "Bạn thao tác hơi nhanh. Vui lòng thử lại sau {seconds} giây.",
    "problem.rateLimitedSoon": "Bạn thao tác hơi nhanh. Vui lòng thử lại sau giây lát.",
    "problem.validation": "Thông tin gửi đi chưa hợp lệ. Hãy kiểm tra lại.",
    "problem.unavailable": "Hệ thống đang tạm gián đoạn; chưa có gì thay đổi. Vui lòng thử lại.",
    "problem.unavailableRetry": "Hệ thống đang tạm gián đoạn; chưa có gì thay đổi. Vui lòng thử lại sau {seconds} giây.",
    "problem.notFound": "Không tìm thấy.",
    "problem.network": "Không kết nối được tới cửa hàng. Hãy kiểm tra mạng rồi thử lại.",
    "problem.server": "Đã có lỗi ở phía cửa hàng. Vui lòng thử lại.",
    "problem.other": "Yêu cầu không thực hiện được (mã {status}).",

    "promo.label": "Mã giảm giá",
    "promo.apply": "Áp dụng",
    "promo.remove": "Bỏ mã",
    "promo.enter": "Hãy nhập mã giảm giá.",
    "promo.applied": "Đã áp dụng mã {code}: giảm {amount}.",
    "promo.removed": "Đã bỏ mã giảm giá.",
    "promo.reason.not-found": "Mã giảm giá này không tồn tại. Hãy kiểm tra lại chính tả.",
    "promo.reason.inactive": "Mã giảm giá này hiện không dùng được.",
    "promo.reason.not-started": "Mã giảm giá này chưa đến thời gian sử dụng.",
    "promo.reason.notStartedAt": "Mã giảm giá này dùng được từ {at}.",
    "promo.reason.expired": "Mã giảm giá này đã hết hạn.",
    "promo.reason.exhausted": "Mã giảm giá này đã hết lượt dùng.",
    "promo.reason.customer": "Bạn đã dùng mã giảm giá này đủ số lần cho phép.",
    "promo.reason.not-applicable": "Mã giảm giá này không áp dụng cho vé nào trong giỏ.",
    "promo.reason.currency": "Mã giảm giá này tính bằng loại tiền khác với giỏ hàng.",
    "promo.reason.below-minimum": "Giỏ hàng chưa đạt giá trị tối thiểu để dùng mã này.",
    "promo.reason.belowMinimumOf": "Mã này cần các vé được áp dụng có tổng từ {min} trở lên.",
    "promo.reason.other": "Không dùng được mã giảm giá này.",

    "checkout.heading": "Thanh toán",
    "checkout.summary": "Đơn hàng của bạn",
    "checkout.buyer": "Thông tin người mua",
    "checkout.email": "Email",
    "checkout.emailHint": "Đơn hàng được ghi theo địa chỉ này.",
    "checkout.emailInvalid": "Hãy nhập một địa chỉ email hợp lệ, ví dụ ten@example.com.",
    "checkout.name": "Họ và tên (không bắt buộc)",
    "checkout.place": "Đặt vé",
    "checkout.placeTotal": "Đặt vé · {total}",
    "checkout.placing": "Đang đặt vé…",
    "checkout.payNote": "Sau khi đặt, bạn thanh toán bằng chuyển khoản ngân hàng với mã thanh toán của đơn.",
    "checkout.editCart": "Sửa giỏ hàng",

    "order.heading": "Đơn hàng",
    "order.title": "Đơn hàng {number}",
    "order.needLink": "Trang này cần đường dẫn đầy đủ của đơn hàng (đường dẫn bạn nhận được khi đặt vé).",
    "order.notFound": "Không tìm thấy đơn hàng. Đường dẫn có thể không đầy đủ; hãy mở lại đúng đường dẫn bạn đã lưu khi đặt vé.",
    "order.status.pending_payment": "Chờ thanh toán",
    "order.status.paid": "Đã thanh toán",
    "order.status.cancelled": "Đã huỷ",
    "order.status.expired": "Hết hạn",
    "order.intro.pending_payment": "Đơn hàng của {email} đã được tạo. Vé được giữ cho bạn đến hạn thanh toán.",
    "order.intro.paid": "Đơn hàng của {email} đã được thanh toán. Vé của bạn ở bên dưới.",
    "order.intro.cancelled": "Đơn hàng của {email} đã bị huỷ; vé không còn hiệu lực.",
    "order.intro.expired": "Đơn hàng của {email} đã quá hạn thanh toán; vé không còn hiệu lực.",
    "order.payTitle": "Chuyển khoản",
    "order.payIntro": "Chuyển đúng số tiền, ghi đúng nội dung chuyển khoản dưới đây, trước {due}. Sau hạn này đơn hàng tự huỷ và vé được trả lại.",
    "order.bank": "Ngân hàng",
    "order.accountNumber": "Số tài khoản",
    "order.accountName": "Chủ tài khoản",
    "order.amount": "Số tiền",
    "order.payCode": "Nội dung chuyển khoản",
    "order.due": "Hạn thanh toán",
    "order.qrAlt": "Mã VietQR để chuyển {amount} với nội dung {code}",
    "order.qrCaption": "Quét mã bằng ứng dụng ngân hàng: số tiền và nội dung đã được điền sẵn.",
    "order.copy": "Chép",
    "order.copyWhat": "Chép {what}",
    "order.copied": "Đã chép {what}.",
    "order.copyFailed": "Không chép được; hãy chọn và chép bằng tay.",
    "order.tickets": "Vé ({tickets})",
    "order.ticketsAfterPayment": "Vé dùng được khi đơn hàng đã được thanh toán.",
    "order.ticket.valid": "Hợp lệ",
    "order.ticket.void": "Đã huỷ",
    "order.items": "Chi tiết đơn hàng",
    "order.keepTitle": "Mở lại đơn hàng sau",
    "order.keepHint": "Hãy lưu hoặc đánh dấu đường dẫn này: đó là cách để xem lại đơn hàng và vé. Đừng chia sẻ nó, vì ai có đường dẫn cũng xem được vé của bạn.",
    "order.link": "đường dẫn đơn hàng",
  },
  en: {
    "title.event": "Choose tickets · ticket-cart",
    "title.cart": "Cart · ticket-cart",
    "title.checkout": "Checkout · ticket-cart",
    "title.order": "Order · ticket-cart",
    "layout.skip": "Skip to the main content",
    "layout.cart": "Cart",
    "layout.close": "Close the cart",
    "layout.dismiss": "Dismiss",
    "layout.cartCount": { one: "Cart, {items} ticket", other: "Cart, {items} tickets" },
    "common.loading": "Loading…",
    "common.retry": "Try again",

    "hold.label": "Seats held for",
    "hold.minutesLeft": {
      one: "{minutes} minute left on the hold of your cart's seats.",
      other: "{minutes} minutes left on the hold of your cart's seats.",
    },
    "hold.warning": "Your seats are held for a few more minutes only. Check out now to keep them.",
    "hold.expired": "The hold on your seats has ended.",
    "hold.expiredNotice": "Your reservation expired: the seats in your cart went back on sale. You can choose them again if some are left.",
    "hold.chooseAgain": "Choose tickets again",

    "cart.heading": "Your cart",
    "cart.checkout": "Check out",
    "cart.view": "View cart",
    "cart.subtotal": "Subtotal",
    "cart.discount": "Discount",
    "cart.discountCode": "Discount (code {code})",
    "cart.total": "Total",
    "cart.empty": "Your cart is empty. Open an event's page to choose tickets.",
    "cart.inCheckout": "Your cart is being checked out; it cannot change now.",
    "cart.unitPrice": "{price} each",
    "cart.times": "× {quantity}",
    "cart.useRemove": "To take this tier out of the cart, use “Remove”.",
    "cart.removed": "{tier} removed from your cart.",
    "cart.quantityNow": { one: "{tier}: {quantity} ticket.", other: "{tier}: {quantity} tickets." },
    "cart.decrease": "One ticket less of {tier}",
    "cart.increase": "One ticket more of {tier}",
    "cart.quantityOf": "{tier}: {quantity}",
    "cart.removeLine": "Remove {tier} from the cart",
    "cart.remove": "Remove",

    "event.heading": "Choose tickets",
    "event.lede": "Choose a tier and how many. Seats in your cart are held for you for a while; the clock at the top says how long.",
    "event.notFound": "This event was not found. Check the link.",
    "event.nothingOnSale": "This event has no tickets on sale yet.",
    "event.add": "Add to cart",
    "event.quantity": "Quantity",
    "event.left": { one: "{available} seat left", other: "{available} seats left" },
    "event.fewLeft": { one: "Only {available} seat left", other: "Only {available} seats left" },
    "event.soldOut": "Sold out",
    "event.opensAt": "On sale from {at}",
    "event.notOpen": "Not on sale yet",
    "event.closed": "Sale ended",
    "event.inactive": "Not on sale",
    "event.until": "On sale until {at}",
    "event.limit": { one: "At most {limit} ticket per order", other: "At most {limit} tickets per order" },
    "event.quantityInvalid": "Enter how many tickets, 1 or more.",
    "event.added": { one: "{quantity} {tier} ticket added to your cart.", other: "{quantity} {tier} tickets added to your cart." },

    "problem.thisTier": "this tier",
    "problem.soldOut": "Sorry, {tier} is sold out.",
    "problem.soldOutSome": { one: "Not enough seats: {tier} has only {available} left.", other: "Not enough seats: {tier} has only {available} left." },
    "problem.limitPerOrder": { one: "One order may hold at most {limit} {tier} ticket.", other: "One order may hold at most {limit} {tier} tickets." },
    "problem.limitInCart": { one: "Your cart already has {inCart}.", other: "Your cart already has {inCart}." },
    "problem.limitLines": "A cart holds at most {limit} tiers of one event.",
    "problem.limitEvents": "A cart holds tickets of at most {limit} events.",
    "problem.saleNotOpen": "{tier} is not on sale yet.",
    "problem.saleNotOpenAt": "{tier} goes on sale at {at}.",
    "problem.saleClosed": "The sale of {tier} has ended.",
    "problem.inactive": "{tier} is not on sale.",
    "problem.tierNotFound": "This tier no longer exists. Reload the page.",
    "problem.currencyMismatch": "A cart holds tickets priced in one currency. Check out this cart first.",
    "problem.cartEmpty": "Your cart is empty.",
    "problem.reservationExpired": "The hold on some seats in your cart has expired. Choose them again.",
    "problem.checkoutInProgress": "Your cart is being checked out. Try again in a moment.",
    "problem.checkoutPending": "Your order is being confirmed and your seats stay held. Trying again…",
    "problem.invalidCartToken": "Your previous cart can no longer be used; a new cart has been started. Choose your tickets again.",
    "problem.rateLimited": { one: "That was a bit fast. Try again in {seconds} second.", other: "That was a bit fast. Try again in {seconds} seconds." },
    "problem.rateLimitedSoon": "That was a bit fast. Try again in a moment.",
    "problem.validation": "Something in the form is not valid. Check it and try again.",
    "problem.unavailable": "The shop is briefly unavailable; nothing was changed. Try again.",
    "problem.unavailableRetry": {
      one: "The shop is briefly unavailable; nothing was changed. Try again in {seconds} second.",
      other: "The shop is briefly unavailable; nothing was changed. Try again in {seconds} seconds.",
    },
    "problem.notFound": "Not found.",
    "problem.network": "The shop cannot be reached. Check your connection and try again.",
    "problem.server": "Something went wrong on the shop's side. Try again.",
    "problem.other": "The request could not be done (code {status}).",

    "promo.label": "Promo code",
    "promo.apply": "Apply",
    "promo.remove": "Remove code",
    "promo.enter": "Enter a promo code.",
    "promo.applied": "Code {code} applied: {amount} off.",
    "promo.removed": "Promo code removed.",
    "promo.reason.not-found": "There is no such promo code. Check its spelling.",
    "promo.reason.inactive": "This promo code cannot be used now.",
    "promo.reason.not-started": "This promo code is not valid yet.",
    "promo.reason.notStartedAt": "This promo code is valid from {at}.",
    "promo.reason.expired": "This promo code has expired.",
    "promo.reason.exhausted": "This promo code has been used up.",
    "promo.reason.customer": "You have used this promo code as often as it allows.",
    "promo.reason.not-applicable": "This promo code does not apply to any ticket in your cart.",
    "promo.reason.currency": "This promo code is an amount in another currency than your cart's.",
    "promo.reason.below-minimum": "Your cart does not reach this code's minimum amount.",
    "promo.reason.belowMinimumOf": "This code needs the tickets it applies to to add up to {min} or more.",
    "promo.reason.other": "This promo code cannot be used.",

    "checkout.heading": "Checkout",
    "checkout.summary": "Your order",
    "checkout.buyer": "Your details",
    "checkout.email": "Email",
    "checkout.emailHint": "The order is recorded under this address.",
    "checkout.emailInvalid": "Enter a valid email address, such as name@example.com.",
    "checkout.name": "Full name (optional)",
    "checkout.place": "Place order",
    "checkout.placeTotal": "Place order · {total}",
    "checkout.placing": "Placing your order…",
    "checkout.payNote": "Once placed, you pay by bank transfer with the order's payment code.",
    "checkout.editCart": "Change the cart",

    "order.heading": "Order",
    "order.title": "Order {number}",
    "order.needLink": "This page needs the order's full link (the one you got when you placed it).",
    "order.notFound": "Order not found. The link may be incomplete; open the exact link you kept when you placed the order.",
    "order.status.pending_payment": "Awaiting payment",
    "order.status.paid": "Paid",
    "order.status.cancelled": "Cancelled",
    "order.status.expired": "Expired",
    "order.intro.pending_payment": "The order of {email} is placed. Its seats are held for you until the payment is due.",
    "order.intro.paid": "The order of {email} is paid. Your tickets are below.",
    "order.intro.cancelled": "The order of {email} was cancelled; its tickets are void.",
    "order.intro.expired": "The order of {email} was not paid in time; its tickets are void.",
    "order.payTitle": "Bank transfer",
    "order.payIntro": "Transfer exactly this amount, with exactly this payment reference, before {due}. After that the order is cancelled and its seats go back on sale.",
    "order.bank": "Bank",
    "order.accountNumber": "Account number",
    "order.accountName": "Account holder",
    "order.amount": "Amount",
    "order.payCode": "Payment reference",
    "order.due": "Pay before",
    "order.qrAlt": "VietQR code to transfer {amount} with reference {code}",
    "order.qrCaption": "Scan it with your banking app: the amount and the reference are filled in.",
    "order.copy": "Copy",
    "order.copyWhat": "Copy the {what}",
    "order.copied": "{what} copied.",
    "order.copyFailed": "Could not copy; select it and copy it by hand.",
    "order.tickets": { one: "Tickets ({tickets})", other: "Tickets ({tickets})" },
    "order.ticketsAfterPayment": "Tickets are good for entry once the order is paid.",
    "order.ticket.valid": "Valid",
    "order.ticket.void": "Void",
    "order.items": "Order details",
    "order.keepTitle": "Open this order later",
    "order.keepHint": "Save or bookmark this link: it is how you see your order and tickets again. Do not share it: anyone with the link can see your tickets.",
    "order.link": "order link",
  },
};

const LANGUAGE_KEY = "tc.lang";
export const LANGUAGES = ["vi", "en"];
// Money is shown as its currency's home country writes it (VND: 1.500.000 ₫), whatever the language.
const CURRENCY_LOCALE = { VND: "vi-VN" };

export function lang() {
  try {
    const saved = localStorage.getItem(LANGUAGE_KEY);
    return LANGUAGES.includes(saved) ? saved : "vi";
  } catch {
    return "vi";
  }
}

export function setLang(language) {
  try {
    localStorage.setItem(LANGUAGE_KEY, language);
  } catch {
    // storage refused: the language holds for this page only
  }
}

// The buyer's own variant of the chosen language (en-GB, en-US, ...), else its usual one.
export function locale() {
  const language = lang();
  const own = (navigator.languages || []).find((tag) => tag.toLowerCase().split("-")[0] === language);
  return own || (language === "vi" ? "vi-VN" : "en-US");
}

export function t(key, values = {}) {
  let text = MESSAGES[lang()][key] ?? MESSAGES.vi[key] ?? key;
  if (typeof text === "object") text = text[new Intl.PluralRules(locale()).select(values.count ?? 0)] ?? text.other;
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in values ? String(values[name]) : whole));
}

export function number(value) {
  return new Intl.NumberFormat(locale()).format(value);
}

// An amount in the currency's minor unit (the API's integers), e.g. 1500000 VND -> "1.500.000 ₫".
export function money(minor, currency) {
  if (!currency) return number(minor);
  const format = new Intl.NumberFormat(CURRENCY_LOCALE[currency] || locale(), { style: "currency", currency });
  const digits = format.resolvedOptions().maximumFractionDigits;
  return format.format(minor / 10 ** digits);
}

export function dateTime(iso) {
  return new Intl.DateTimeFormat(locale(), { dateStyle: "medium", timeStyle: "short" }).format(new Date(iso));
}

// The page's fixed texts: elements naming a key in data-i18n (their text) or
// data-i18n-aria-label (their label).
export function applyTranslations(root = document) {
  document.documentElement.lang = lang();
  for (const element of root.querySelectorAll("[data-i18n]")) element.textContent = t(element.dataset.i18n);
  for (const element of root.querySelectorAll("[data-i18n-aria-label]")) {
    element.setAttribute("aria-label", t(element.dataset.i18nAriaLabel));
  }
}
