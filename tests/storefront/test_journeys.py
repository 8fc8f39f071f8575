"""A buyer's journeys through the storefront in a real browser: one test per item of the
spec's "Frontend Cart UI" (browse, add two tiers, count and drawer, change and remove, promo
codes, the countdown, guest checkout, the confirmation, reopening it), and the refusals a
buyer meets, two tabs, a phone, the console. Texts are checked in Vietnamese, the default.

Each test writes screenshots to build/storefront-screenshots/ (docs/storefront.md).
"""

from __future__ import annotations

import json
import re

import httpx

from tests.live_server import live_server
from tests.storefront.conftest import PHONE, Shop, expire_holds, in_days, new_browsing, screenshot

try:
    from playwright.async_api import expect
except ImportError:  # the browser fixture says what is missing (and fails under CI)
    expect = None

GENERAL = {"name": "General admission", "price": 500_000, "quantity_total": 1000, "max_per_order": 6}
VIP = {"name": "VIP", "price": 2_000_000, "quantity_total": 50, "max_per_order": 4}
NBSP = "\u00a0"
# A 1x1 transparent PNG: what the test answers for the VietQR image.
ONE_PIXEL_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"
)


def vnd(amount: str) -> str:
    """Money as vi-VN writes it: 1.500.000 ₫ (a no-break space before the sign)."""
    return f"{amount}{NBSP}₫"


def card(page, name: str):
    return page.locator(".tier", has=page.get_by_role("heading", name=name, exact=True))


async def add(page, name: str, quantity: int) -> None:
    tier = card(page, name)
    await tier.get_by_label("Số lượng").fill(str(quantity))
    await tier.get_by_role("button", name="Thêm vào giỏ").click()


async def added(page, name: str, quantity: int) -> None:
    """Add, and wait for the shop to say so."""
    await add(page, name, quantity)
    await expect(page.locator(".notice.success")).to_contain_text(f"Đã thêm {quantity} vé {name} vào giỏ hàng")


async def open_drawer(page):
    await page.get_by_role("button", name=re.compile("^Giỏ hàng")).click()
    drawer = page.get_by_role("dialog", name="Giỏ hàng")
    await expect(drawer).to_be_visible()
    return drawer


def line(scope, name: str):
    page = getattr(scope, "page", scope)  # a locator's page, or the page itself
    return scope.locator(".line", has=page.get_by_role("link", name=name, exact=True))


async def check_out(page, email: str = "buyer@example.com", name: str = "A Buyer") -> None:
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Họ và tên (không bắt buộc)").fill(name)
    await page.get_by_role("button", name=re.compile("^Đặt vé")).click()


# -- the spec's items, one journey each -------------------------------------------------------------


async def test_browse_an_event_its_tiers_prices_seats_left_and_sale_status(shop, browsing):
    event = await shop.event(
        GENERAL,
        VIP,
        {"name": "Early bird", "price": 300_000, "quantity_total": 0, "max_per_order": 2},
        {"name": "Late sale", "price": 800_000, "sales_start": "2099-06-01T12:00:00+07:00"},
        {"name": "Presale", "price": 400_000, "sales_start": in_days(-2), "sales_end": in_days(-1)},
    )
    page = await browsing.page(event.path)

    names = page.locator(".tier .tier-name")
    await expect(names).to_have_text(["Early bird", "Presale", "General admission", "Late sale", "VIP"])
    general = card(page, "General admission")
    await expect(general.locator(".tier-price")).to_have_text(vnd("500.000"))
    await expect(general.locator(".tier-availability")).to_have_text("Còn 1.000 vé")
    await expect(general).to_contain_text("Tối đa 6 vé mỗi đơn hàng")
    await expect(general.get_by_role("button", name="Thêm vào giỏ")).to_be_enabled()
    await expect(card(page, "VIP").locator(".tier-price")).to_have_text(vnd("2.000.000"))
    await expect(card(page, "VIP").locator(".tier-availability")).to_have_text("Còn 50 vé")

    early = card(page, "Early bird")
    await expect(early.locator(".tier-availability")).to_have_text("Hết vé")
    await expect(early.get_by_role("button", name="Thêm vào giỏ")).to_be_disabled()
    late = card(page, "Late sale")  # in the buyer's time zone (Asia/Ho_Chi_Minh) and language
    await expect(late.locator(".tier-availability")).to_have_text(re.compile(r"^Mở bán lúc 12:00.* 1 thg 6, 2099$"))
    await expect(late.get_by_role("button", name="Thêm vào giỏ")).to_be_disabled()
    await expect(card(page, "Presale").locator(".tier-availability")).to_have_text("Đã ngừng bán")

    # Live: another buyer takes seats; the page shows it when it asks again.
    async with httpx.AsyncClient(base_url=shop.url) as other:
        taken = await other.post("/api/cart/items", json={"tier_id": event.tiers["VIP"], "quantity": 4})
        assert taken.status_code == 201
    await page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")
    await expect(card(page, "VIP").locator(".tier-availability")).to_have_text("Còn 46 vé")
    await screenshot(page, "event")
    browsing.assert_clean()


async def test_add_two_tiers_then_the_header_counts_them_and_the_drawer_lists_them(shop, browsing):
    event = await shop.event(GENERAL, VIP)
    page = await browsing.page(event.path)
    await expect(page.locator("#cart-count")).to_have_text("0")

    await added(page, "General admission", 2)
    await expect(page.locator("#cart-count")).to_have_text("2")
    await added(page, "VIP", 1)
    await expect(page.locator("#cart-count")).to_have_text("3")
    await expect(page.get_by_role("button", name="Giỏ hàng, 3 vé")).to_be_visible()

    drawer = await open_drawer(page)
    await expect(drawer.locator(".line")).to_have_count(2)
    await expect(line(drawer, "General admission").locator(".line-total")).to_have_text(vnd("1.000.000"))
    await expect(line(drawer, "VIP").locator(".line-total")).to_have_text(vnd("2.000.000"))
    await expect(drawer.locator(".totals .total dd")).to_have_text(vnd("3.000.000"))
    await expect(drawer.get_by_role("link", name="Thanh toán")).to_be_visible()
    await screenshot(page, "drawer")

    # The drawer opens from every page.
    for path in ("/cart", "/checkout"):
        other = await browsing.page(path)
        drawer = await open_drawer(other)
        await expect(drawer.locator(".line")).to_have_count(2)
    browsing.assert_clean()


async def test_change_and_remove_a_line_in_the_drawer_by_keyboard(shop, browsing):
    event = await shop.event(GENERAL, VIP)
    page = await browsing.page(event.path)
    await added(page, "General admission", 2)
    await added(page, "VIP", 1)

    cart_button = page.get_by_role("button", name=re.compile("^Giỏ hàng"))
    await cart_button.focus()
    await page.keyboard.press("Enter")
    drawer = page.get_by_role("dialog", name="Giỏ hàng")
    await expect(drawer).to_be_visible()

    more = drawer.get_by_role("button", name="Thêm một vé General admission")
    await more.focus()
    await page.keyboard.press("Enter")
    general = line(drawer, "General admission")
    await expect(general.locator(".quantity")).to_have_text("3")
    await expect(general.locator(".line-total")).to_have_text(vnd("1.500.000"))
    await expect(page.locator("#cart-count")).to_have_text("4")
    await expect(more).to_be_focused()  # the drawer redrew; the keyboard stays where it was
    await page.keyboard.press("Shift+Tab")
    await page.keyboard.press("Enter")  # one less
    await expect(general.locator(".quantity")).to_have_text("2")

    await drawer.get_by_role("button", name="Xoá VIP khỏi giỏ hàng").focus()
    await page.keyboard.press("Enter")
    await expect(line(drawer, "VIP")).to_have_count(0)
    await expect(drawer.locator(".totals .total dd")).to_have_text(vnd("1.000.000"))
    await expect(page.locator("#cart-count")).to_have_text("2")
    await expect(drawer.get_by_role("button", name="Đóng giỏ hàng")).to_be_focused()  # its line is gone

    await page.keyboard.press("Escape")
    await expect(drawer).to_be_hidden()
    await expect(cart_button).to_be_focused()
    browsing.assert_clean()


async def test_a_bad_promo_code_says_why_and_a_good_one_takes_its_discount(shop, browsing):
    event = await shop.event(GENERAL)
    await shop.promo(code="SAVE10", kind="percent", value=10)
    await shop.promo(code="OLDCODE", kind="percent", value=50, starts_at=in_days(-3), ends_at=in_days(-1))
    page = await browsing.page(event.path)
    await added(page, "General admission", 2)
    await page.goto(shop.url + "/checkout")

    code = page.get_by_label("Mã giảm giá")
    message = page.locator("#promo-message")
    await code.fill("NOPE")
    await page.get_by_role("button", name="Áp dụng").click()
    await expect(message).to_have_text("Mã giảm giá này không tồn tại. Hãy kiểm tra lại chính tả.")
    await expect(code).to_have_attribute("aria-invalid", "true")
    await code.fill("oldcode")
    await page.get_by_role("button", name="Áp dụng").click()
    await expect(message).to_have_text("Mã giảm giá này đã hết hạn.")

    await code.fill(" save10 ")
    await page.get_by_role("button", name="Áp dụng").click()
    await expect(page.locator("#promo-applied-text")).to_have_text(f"Đã áp dụng mã SAVE10: giảm {vnd('100.000')}.")
    await expect(page.locator("#summary-totals .discount")).to_contain_text(f"\u2212{vnd('100.000')}")
    await expect(page.locator("#summary-totals .total dd")).to_have_text(vnd("900.000"))
    await expect(page.get_by_role("button", name=re.compile("^Đặt vé"))).to_have_text(f"Đặt vé · {vnd('900.000')}")
    await screenshot(page, "checkout-promo")

    await page.get_by_role("button", name="Bỏ mã").click()
    await expect(page.locator("#summary-totals .total dd")).to_have_text(vnd("1.000.000"))
    await expect(code).to_be_visible()
    browsing.assert_clean(422)


async def test_the_countdown_warns_then_the_reservation_expires_on_a_fake_clock(shop, browsing, redis, settings):
    event = await shop.event(GENERAL)
    page = await browsing.context.new_page()
    await page.clock.install()  # the page's Date and timers are Playwright's from here on
    await page.goto(shop.url + event.path)
    await page.evaluate(
        """() => {
            window.said = [];
            new MutationObserver(() => {
                const text = document.getElementById("announcer").textContent;
                if (text) window.said.push(text);
            }).observe(document.getElementById("announcer"), {childList: true, characterData: true, subtree: true});
        }"""
    )
    await added(page, "General admission", 2)
    hold = page.locator("#hold")
    await expect(hold).to_be_visible()
    await expect(page.locator("#hold-timer")).to_have_text(re.compile(r"^1[45]:\d\d$"))
    await expect(hold).not_to_have_class(re.compile("warning"))

    await page.clock.run_for("11:00")  # about 4 minutes left
    await expect(page.locator("#hold-timer")).to_have_text(re.compile(r"^[34]:\d\d$"))
    await expect(hold).not_to_have_class(re.compile("warning"))
    await page.clock.run_for("01:30")  # the last 3 minutes: a warning, seen and heard once
    await expect(hold).to_have_class(re.compile("warning"))
    await expect(page.locator(".notice.warning")).to_contain_text("Sắp hết thời gian giữ chỗ")
    await screenshot(page, "countdown-warning")

    await expire_holds(redis, settings, event.id, await browsing.cart_id())  # the server's 15 minutes pass too
    async with page.expect_response(lambda answer: answer.url.endswith("/tiers")):  # seats left, asked again
        await page.clock.run_for("03:00")
    await expect(page.locator(".notice.warning")).to_contain_text("Đã hết thời gian giữ chỗ")
    await expect(page.locator("#cart-count")).to_have_text("0")  # as the server now says
    await expect(hold).to_be_hidden()
    drawer = await open_drawer(page)
    await expect(drawer).to_contain_text("Đã hết thời gian giữ chỗ")
    await expect(drawer).to_contain_text("Giỏ hàng đang trống")
    await expect(drawer.get_by_role("link", name="Chọn lại vé")).to_have_attribute("href", event.path)
    await screenshot(page, "expired")

    said = await page.evaluate("window.said")
    assert [s for s in said if "phút" in s or "hết thời gian" in s] == [
        "Chỉ còn 5 phút giữ chỗ cho các vé trong giỏ.",
        "Chỉ còn 3 phút giữ chỗ cho các vé trong giỏ.",
        "Chỉ còn 1 phút giữ chỗ cho các vé trong giỏ.",
        "Đã hết thời gian giữ chỗ.",
    ]  # a screen reader hears the thresholds, not 900 seconds
    browsing.assert_clean()


async def test_guest_checkout_lands_on_the_confirmation_with_tickets_and_payment_code(shop, browsing):
    event = await shop.event(GENERAL, VIP)
    page = await browsing.page(event.path)
    await added(page, "General admission", 2)
    await added(page, "VIP", 1)
    await page.get_by_role("button", name="Xem giỏ hàng").click()
    await page.get_by_role("dialog", name="Giỏ hàng").get_by_role("link", name="Thanh toán").click()
    await expect(page).to_have_url(shop.url + "/checkout")
    await expect(page.locator("#summary-lines .line")).to_have_count(2)
    await screenshot(page, "checkout")

    await page.get_by_label("Email").fill("not-an-address")
    await page.get_by_role("button", name=re.compile("^Đặt vé")).click()
    await expect(page.locator("#email-message")).to_have_text(
        "Hãy nhập một địa chỉ email hợp lệ, ví dụ ten@example.com."
    )
    await expect(page.get_by_label("Email")).to_be_focused()
    await check_out(page)

    await expect(page).to_have_url(re.compile(r"/orders/[0-9a-f-]{36}#t=[\w-]+$"))
    order_id = page.url.split("/orders/")[1].split("#")[0]
    order = await shop.order(order_id, page.url.split("#t=")[1])
    await expect(page.get_by_role("heading", level=1)).to_have_text(f"Đơn hàng {order['number']}")
    await expect(page.locator(".badge")).to_have_text("Chờ thanh toán")
    await expect(page.locator("#payment-code")).to_have_text(order["payment"]["code"])
    payment = page.locator(".payment")
    await expect(payment).to_contain_text(vnd("3.000.000"))
    await expect(payment.locator("time")).to_have_attribute("datetime", order["payment"]["due_at"])
    await expect(page.locator(".ticket-code")).to_have_text([t["code"] for t in order["tickets"]])
    tier_names = {tier_id: name for name, tier_id in event.tiers.items()}
    await expect(page.locator(".ticket .ticket-tier")).to_have_text(
        [tier_names[t["tier_id"]] for t in order["tickets"]]
    )
    await expect(page.locator("#cart-count")).to_have_text("0")
    assert not await page.locator(".qr").count()  # no bank account configured: no QR code
    await screenshot(page, "order")
    browsing.assert_clean()


async def test_the_order_reopens_later_with_its_link_and_the_token_never_leaves_the_page(shop, browsing, browser):
    event = await shop.event(GENERAL)
    page = await browsing.page(event.path)
    await added(page, "General admission", 1)
    await page.goto(shop.url + "/checkout")
    await check_out(page)
    await expect(page).to_have_url(re.compile("#t="))
    await expect(page.locator("#payment-code")).to_be_visible()
    link = page.url
    number = await page.locator("h1").inner_text()
    code = await page.locator("#payment-code").inner_text()
    await expect(page.locator("#order-link")).to_have_value(link)

    later = await new_browsing(browser, shop)  # another day, another browser: only the link
    try:
        requests = []

        def record(request):
            requests.append(request)

        later.context.on("request", record)
        again = await later.page(link.split(shop.url)[1])
        await expect(again.locator("h1")).to_have_text(number)
        await expect(again.locator("#payment-code")).to_have_text(code)
        token = link.split("#t=")[1]
        for request in requests:
            assert token not in request.url
            assert "referer" not in await request.all_headers()  # Referrer-Policy: no-referrer

        await again.goto(link.split("#")[0])
        await expect(again.locator("#order-message")).to_contain_text("cần đường dẫn đầy đủ của đơn hàng")
        await again.goto(link.split("#")[0] + "#t=not-the-token")
        await expect(again.locator("#order-message")).to_contain_text("Không tìm thấy đơn hàng")
        later.assert_clean(404)
    finally:
        await later.context.close()
    browsing.assert_clean()


async def test_the_confirmation_shows_the_operators_bank_account_and_the_vietqr_of_the_transfer(settings, browser):
    """With a bank account configured, the order says where to pay (bank, account number,
    holder) and shows the VietQR image of the transfer (its host answered by the test: the
    browser reaches no other host)."""
    bank = {
        "PAYMENT_BANK_ID": "970415",
        "PAYMENT_BANK_NAME": "VietinBank",
        "PAYMENT_ACCOUNT_NUMBER": "113366668888",
        "PAYMENT_ACCOUNT_NAME": "CONG TY VE SU KIEN",
    }
    with live_server(settings, **bank) as server:
        shop = Shop(server, settings)
        event = await shop.event(GENERAL)
        async with shop.client() as client:
            added = await client.post(
                "/api/cart/items", json={"tier_id": event.tiers["General admission"], "quantity": 2}
            )
            client.cookies.clear()
            order = (
                await client.post(
                    "/api/orders",
                    json={"email": "buyer@example.com"},
                    headers={"X-Cart-Token": added.headers["x-cart-token"]},
                )
            ).json()
        assert order["payment"].get("account_number") == "113366668888", order
        qr_urls: list[str] = []

        async def answer_qr(route):
            qr_urls.append(route.request.url)
            await route.fulfill(status=200, content_type="image/png", body=ONE_PIXEL_PNG)

        browsing = await new_browsing(browser, shop)
        try:
            await browsing.context.route("https://img.vietqr.io/**", answer_qr)
            page = await browsing.page(f"/orders/{order['id']}#t={order['access_token']}")
            facts = page.locator(".pay-facts")
            await expect(facts).to_contain_text("VietinBank")
            await expect(page.locator("#account-number")).to_have_text("113366668888")
            await expect(facts).to_contain_text("CONG TY VE SU KIEN")
            await expect(page.locator("#payment-code")).to_have_text(order["payment"]["code"])
            await expect(page.get_by_role("img", name=re.compile("^Mã VietQR"))).to_be_visible()
            assert qr_urls == [order["payment"]["qr_url"]]
            assert qr_urls[0].startswith("https://img.vietqr.io/image/970415-113366668888-")
            await screenshot(page, "order-bank")
            browsing.assert_clean()
        finally:
            await browsing.context.close()


# -- refusals, as a person reads them ----------------------------------------------------------------


async def test_sold_out_and_limit_refusals_are_shown_with_the_numbers(shop, browsing):
    event = await shop.event(
        {"name": "Standing", "price": 250_000, "quantity_total": 3, "max_per_order": 6},
        {"name": "VIP", "price": 2_000_000, "quantity_total": 50, "max_per_order": 4},
    )
    page = await browsing.page(event.path)
    async with httpx.AsyncClient(base_url=shop.url) as other:  # another buyer holds two of three
        assert (
            await other.post("/api/cart/items", json={"tier_id": event.tiers["Standing"], "quantity": 2})
        ).is_success

    standing = card(page, "Standing")
    await add(page, "Standing", 2)
    await expect(standing.locator(".field-message")).to_have_text("Không đủ vé: Standing chỉ còn 1 vé.")
    await expect(standing.get_by_label("Số lượng")).to_have_attribute("aria-invalid", "true")
    await expect(standing.locator(".tier-availability")).to_have_text("Chỉ còn 1 vé")  # asked again
    await added(page, "Standing", 1)
    await expect(standing.locator(".tier-availability")).to_have_text("Hết vé")
    await expect(standing.get_by_role("button", name="Thêm vào giỏ")).to_be_disabled()

    vip = card(page, "VIP")
    await added(page, "VIP", 3)
    await add(page, "VIP", 2)
    await expect(vip.locator(".field-message")).to_have_text(
        "Mỗi đơn hàng được mua tối đa 4 vé VIP. Giỏ hàng của bạn đã có 3 vé loại này."
    )
    await expect(page.locator(".notice.success")).to_have_count(0)  # the earlier add's notice is gone
    await screenshot(page, "refused-limit")

    drawer = await open_drawer(page)
    await line(drawer, "VIP").get_by_role("button", name="Thêm một vé VIP").click()
    await expect(line(drawer, "VIP").locator(".quantity")).to_have_text("4")
    at_limit = line(drawer, "VIP").get_by_role("button", name="Thêm một vé VIP")
    await expect(at_limit).to_have_attribute("aria-disabled", "true")  # focusable still: it says why
    await at_limit.focus()
    await page.keyboard.press("Enter")
    await expect(line(drawer, "VIP").locator(".line-error")).to_have_text("Mỗi đơn hàng được mua tối đa 4 vé VIP.")
    await line(drawer, "Standing").get_by_role("button", name="Thêm một vé Standing").click()
    await expect(line(drawer, "Standing").locator(".line-error")).to_have_text("Rất tiếc, Standing đã hết vé.")
    browsing.assert_clean(409)


async def test_rate_limited_unavailable_and_pending_checkouts_are_shown_and_retried(shop, browsing):
    event = await shop.event(GENERAL)
    page = await browsing.page(event.path)
    await added(page, "General admission", 1)

    # Unavailable: nothing changed, say so and when to try again.
    async def outage(route):
        await route.fulfill(
            status=503,
            headers={"content-type": "application/problem+json", "retry-after": "3"},
            body='{"type":"about:blank","title":"Unavailable","status":503,"detail":"x","code":"unavailable"}',
        )

    await page.route("**/api/cart/items", outage)
    await add(page, "General admission", 1)
    await expect(card(page, "General admission").locator(".field-message")).to_have_text(
        "Hệ thống đang tạm gián đoạn; chưa có gì thay đổi. Vui lòng thử lại sau 3 giây."
    )
    await page.unroute("**/api/cart/items", outage)

    # Rate limited: ten wrong codes in a minute (the cart's promo attempts), then the eleventh.
    await page.goto(shop.url + "/checkout")
    for _ in range(10):
        tried = await browsing.context.request.post(shop.url + "/api/cart/promo", data={"code": "WRONG"})
        assert tried.status == 422
    await page.get_by_label("Mã giảm giá").fill("WRONG")
    await page.get_by_role("button", name="Áp dụng").click()
    await expect(page.locator("#promo-message")).to_have_text(
        re.compile(r"^Bạn thao tác hơi nhanh\. Vui lòng thử lại sau \d+ giây\.$")
    )
    await expect(page.get_by_role("button", name="Áp dụng")).to_be_disabled()

    # A checkout whose outcome is being resolved: retried by itself, with the same key, once asked.
    keys = []

    async def pending_once(route):
        keys.append(await route.request.header_value("idempotency-key"))
        if len(keys) == 1:
            await route.fulfill(
                status=503,
                headers={"content-type": "application/problem+json", "retry-after": "1"},
                body='{"type":"about:blank","title":"Pending","status":503,"detail":"x","code":"checkout-pending"}',
            )
        else:
            await route.continue_()

    await page.route("**/api/orders", pending_once)
    await check_out(page)
    await expect(page.locator("#checkout-message")).to_contain_text("Đơn hàng đang được xác nhận")
    await expect(page).to_have_url(re.compile(r"/orders/.*#t="))
    assert len(keys) == 2 and keys[0] == keys[1] and keys[0]
    browsing.assert_clean(429, 503)


async def test_an_expired_reservation_at_checkout_is_said_and_the_cart_shown_as_it_is(shop, browsing, redis, settings):
    event = await shop.event(GENERAL)
    page = await browsing.page(event.path)
    await added(page, "General admission", 2)
    await page.goto(shop.url + "/checkout")
    await expect(page.locator("#summary-lines .line")).to_have_count(1)
    await expire_holds(redis, settings, event.id, await browsing.cart_id())
    await check_out(page)
    await expect(page.locator(".notice.warning")).to_contain_text("Đã hết thời gian giữ chỗ")
    await expect(page.locator("#cart-count")).to_have_text("0")
    await expect(page.locator("#checkout-empty")).to_contain_text("Giỏ hàng đang trống")
    await expect(page.locator("#checkout-empty").get_by_role("link", name="Chọn lại vé")).to_be_visible()
    browsing.assert_clean(409)


# -- tabs, phones, the console, the token -------------------------------------------------------------


async def test_two_tabs_stay_in_sync(shop, browsing):
    event = await shop.event(GENERAL, VIP)
    shopping = await browsing.page(event.path)
    cart_tab = await browsing.page("/cart")
    await expect(cart_tab.locator("#cart-page-body")).to_contain_text("Giỏ hàng đang trống")

    await added(shopping, "General admission", 2)
    await expect(cart_tab.locator("#cart-count")).to_have_text("2")
    await expect(line(cart_tab.locator("#cart-page-body"), "General admission").locator(".quantity")).to_have_text("2")
    await expect(cart_tab.locator("#hold")).to_be_visible()

    await (
        line(cart_tab.locator("#cart-page-body"), "General admission")
        .get_by_role("button", name="Xoá General admission khỏi giỏ hàng")
        .click()
    )
    await expect(shopping.locator("#cart-count")).to_have_text("0")
    await expect(shopping.locator("#hold")).to_be_hidden()

    shared = await shopping.evaluate("localStorage.getItem('tc.cart')")
    assert set(json.loads(shared)) == {"count", "expires_at", "at"}  # never the token
    browsing.assert_clean()


async def test_a_phone_sized_screen(shop, browser):
    event = await shop.event(GENERAL, VIP)
    phone = await new_browsing(browser, shop, viewport=PHONE, is_mobile=True, has_touch=True)
    try:
        page = await phone.page(event.path)
        await expect(card(page, "VIP")).to_be_visible()

        async def fits() -> bool:
            return await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

        assert await fits()
        await screenshot(page, "phone-event")
        general = card(page, "General admission")
        await general.get_by_label("Số lượng").fill("2")
        await general.get_by_role("button", name="Thêm vào giỏ").tap()
        await expect(page.locator("#cart-count")).to_have_text("2")
        for target in (general.get_by_role("button", name="Thêm vào giỏ"), page.locator("#cart-button")):
            box = await target.bounding_box()
            assert box["height"] >= 44  # a finger's target
        drawer = await open_drawer(page)
        box = await drawer.bounding_box()
        assert box["width"] == PHONE["width"]  # the drawer takes the whole screen
        assert await fits()
        await screenshot(page, "phone-drawer")
        await page.goto(shop.url + "/checkout")
        await expect(page.get_by_label("Email")).to_be_visible()
        assert await fits()
        await check_out(page)
        await expect(page.locator("#payment-code")).to_be_visible()
        assert await fits()
        await screenshot(page, "phone-order")
        phone.assert_clean()
    finally:
        await phone.context.close()


async def test_no_console_errors_on_any_page_in_either_language(shop, browsing):
    event = await shop.event(GENERAL)
    page = await browsing.page(event.path)
    await added(page, "General admission", 1)
    for path in ("/cart", "/checkout", "/"):
        await page.goto(shop.url + path)
        await expect(page.locator("#cart-count")).to_have_text("1")
    await page.get_by_role("button", name="English").click()
    await expect(page.locator("html")).to_have_attribute("lang", "en")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Your cart")
    await page.goto(shop.url + event.path)
    await expect(card(page, "General admission").locator(".tier-price")).to_have_text(vnd("500.000"))  # VND's own way
    await expect(card(page, "General admission").locator(".tier-availability")).to_have_text("999 seats left")
    await page.goto(shop.url + "/checkout")
    await page.get_by_label("Email").fill("buyer@example.com")
    await page.get_by_role("button", name=re.compile("^Place order")).click()
    await expect(page.locator(".badge")).to_have_text("Awaiting payment")
    await expect(page.locator(".payment")).to_contain_text("Payment reference")
    await page.get_by_role("button", name="Tiếng Việt").click()
    await expect(page.locator(".badge")).to_have_text("Chờ thanh toán")
    browsing.assert_clean()


async def test_the_cart_token_is_never_readable_by_script(shop, browsing):
    event = await shop.event(GENERAL)
    page = await browsing.page(event.path)
    seen = await page.evaluate(
        """async (tier) => {
            const answer = await fetch("/api/cart/items", {
                method: "POST", headers: {"content-type": "application/json"},
                body: JSON.stringify({tier_id: tier, quantity: 1}),
            });
            return {status: answer.status, header: answer.headers.get("x-cart-token"), cookie: document.cookie};
        }""",
        event.tiers["General admission"],
    )
    assert seen == {"status": 201, "header": None, "cookie": ""}
    cookie = next(c for c in await browsing.context.cookies() if c["name"] == "cart_token")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax" and cookie["path"] == "/"
    await page.reload()
    await expect(page.locator("#cart-count")).to_have_text("1")  # the cookie alone names the cart
    browsing.assert_clean()


async def test_a_cart_cookie_the_server_no_longer_accepts_starts_a_new_cart(shop, browsing):
    event = await shop.event(GENERAL)
    forged = "v1.00000000-0000-4000-8000-000000000000.signed-with-a-retired-key"
    await browsing.context.add_cookies([{"name": "cart_token", "value": forged, "url": shop.url, "httpOnly": True}])
    page = await browsing.page(event.path)
    await expect(page.locator(".notice.warning")).to_contain_text("Giỏ hàng trước của bạn không còn dùng được nữa")
    await added(page, "General admission", 1)
    await expect(page.locator("#cart-count")).to_have_text("1")
    assert await browsing.cart_id() != "00000000-0000-4000-8000-000000000000"
    browsing.assert_clean(401)
