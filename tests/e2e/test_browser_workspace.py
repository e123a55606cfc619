"""The agent workspace in Chromium: phone and tablet layouts, private notes with mentions (two agents),
the composer's mends (counter, quotes, one reply per press), the thread opening at its latest message,
assigning to a colleague, snooze, shortcuts and drafts. Saves the layout screenshots under tests/artifacts/
(docs/inbox-*.png, which the README shows, are copies of them)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from inbox.models import CannedResponse, Label, Message
from tests.e2e.test_browser import browser, shot, wait_until_open  # noqa: F401 - `browser` is a fixture

pytestmark = [pytest.mark.e2e, pytest.mark.flaky(reruns=2, reruns_delay=1)]

PHONE = {"width": 390, "height": 844}
TABLET = {"width": 1024, "height": 768}
DESKTOP = {"width": 1440, "height": 900}


@pytest.fixture
def pages(browser):  # noqa: F811 - the module-scoped fixture imported above
    """Open a logged-in page of an agent at a viewport: pages(stack, user, path, viewport)."""
    opened = []

    def new(stack, user=None, path: str = "/", viewport=DESKTOP, permissions=()) -> Page:
        context = browser.new_context(
            viewport=viewport, locale="en-GB", timezone_id="UTC", permissions=list(permissions)
        )
        context.set_default_timeout(10_000)
        opened.append(context)
        context.add_cookies([stack.session_cookie(user)])
        page = context.new_page()
        wait_until_open(page, stack, path)
        return page

    yield new
    for context in opened:
        context.close()


def add_history(conversation, count: int) -> None:
    """`count` earlier messages, alternating customer and agent, the newest one minute ago."""
    now = timezone.now()
    Message.objects.bulk_create(
        Message(
            conversation=conversation,
            direction="in" if n % 2 else "out",
            type="text",
            text=f"History line {n}",
            channel="tiktok",
            provider_message_id=f"history-{conversation.pk}-{n}",
            status="" if n % 2 else "seen",
            sent_at=now - timedelta(minutes=count - n + 1),
            queued_at=None if n % 2 else now - timedelta(minutes=count - n + 1),
        )
        for n in range(count)
    )


def test_a_phone_shows_one_pane_at_a_time_with_back_navigation(stack, pages):
    stack.simulate_inbound("mia.rose", "Hi! Is the denim jacket still available in size M? 🧥")
    stack.simulate_inbound("jonas_k", "Do you ship to Berlin?")
    mia = stack.conversation("mia.rose")
    add_history(mia, 30)
    stack.simulate_inbound("mia.rose", "The latest message")
    page = pages(stack, viewport=PHONE)
    expect(page.locator(".list-pane")).to_be_visible()
    expect(page.locator(".thread-pane")).to_be_hidden()
    row = page.locator(f'.conv-row[data-id="{mia.pk}"]')
    expect(row).to_be_visible()
    box = row.bounding_box()
    assert box["width"] > 350, box  # the list takes the phone's width
    shot(page, "inbox-phone.png")

    row.click()
    expect(page.locator(".thread-pane")).to_be_visible()
    expect(page.locator(".list-pane")).to_be_hidden()
    expect(page.locator(".msg-in .msg-text").last).to_have_text("The latest message")
    expect(page.locator(".msg-in .msg-text").last).to_be_in_viewport()
    assert page.locator("#messages").bounding_box()["width"] > 350
    shot(page, "inbox-phone-thread.png")

    page.click("#details-button")
    expect(page.locator("#side-panel")).to_be_visible()
    expect(page.locator(".thread-pane")).to_be_hidden()
    expect(page.locator("#contact-name")).to_have_text("mia.rose")
    shot(page, "inbox-phone-details.png")
    page.click("#back-to-thread")
    expect(page.locator(".thread-pane")).to_be_visible()
    page.click("#back-to-list")
    expect(page.locator(".list-pane")).to_be_visible()
    expect(page.locator(".thread-pane")).to_be_hidden()
    expect(page).to_have_url(stack.web_url + "/")


def test_a_tablet_shows_list_and_thread_and_opens_the_details_over_the_thread(stack, pages):
    stack.simulate_inbound("lea.m", tiktok_me="SPRING24", text="Hi, I'd like the spring discount")
    lea = stack.conversation("lea.m")
    page = pages(stack, path=f"/c/{lea.pk}/", viewport=TABLET)
    expect(page.locator(".list-pane")).to_be_visible()
    expect(page.locator(".thread-pane")).to_be_visible()
    expect(page.locator("#side-panel")).to_be_hidden()
    expect(page.locator("#referral-banner")).to_contain_text("Came via a TikTok.me link")
    page.click("#details-button")
    expect(page.locator("#side-panel")).to_be_visible()
    expect(page.locator("#attribution-facts")).to_contain_text("TikTok.me ref")
    shot(page, "inbox-tablet.png")
    page.click("#back-to-thread")
    expect(page.locator("#side-panel")).to_be_hidden()


def test_a_conversation_opened_by_url_or_reloaded_shows_its_latest_message(stack, pages):
    stack.simulate_inbound("tt-long", "First words")
    conversation = stack.conversation("tt-long")
    add_history(conversation, 60)
    stack.simulate_inbound("tt-long", "Newest words")
    page = pages(stack, path=f"/c/{conversation.pk}/")
    newest = page.locator(".msg-in .msg-text", has_text="Newest words")
    expect(newest).to_be_in_viewport()
    page.reload()
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    expect(page.locator("body")).to_have_attribute("data-thread-ready", str(conversation.pk))
    expect(newest).to_be_in_viewport()
    assert newest.get_attribute("dir") == "auto"


def test_a_private_note_mentions_a_colleague_live_and_is_never_sent(stack, pages, django_user_model):
    colleague = django_user_model.objects.create_user("colleague", password="colleague-pass-1", first_name="Cleo")
    stack.inbox.members.add(colleague)
    stack.simulate_inbound("tt-vip", "I have a problem with my order")
    conversation = stack.conversation("tt-vip")
    page = pages(stack, path=f"/c/{conversation.pk}/")
    other = pages(stack, colleague, path="/")
    sent_before = stack.sandbox.state()["messages"]

    page.keyboard.press("Escape")  # out of the composer, which has the focus after opening (else "n" is typed)
    page.keyboard.press("n")  # note mode, from anywhere on the page
    expect(page.locator("#composer")).to_have_attribute("data-mode", "note")
    expect(page.locator("#send-button")).to_have_text("Add note")
    page.fill("#composer-text", "VIP customer — @colleague can you check the refund?")
    page.press("#composer-text", "Enter")
    note = page.locator(".msg-note")
    expect(note.locator(".msg-text")).to_have_text("VIP customer — @colleague can you check the refund?")
    expect(note.locator(".note-tag")).to_have_text("Private note")
    expect(page.locator("#replies-left")).to_have_text("10 of 10 replies left")

    # The colleague is told (toast) and sees the note when opening the conversation.
    expect(other.locator(".toast")).to_contain_text("mentioned you in a note")
    other.wait_for_function("key => (window.__processed || []).includes(key)", arg=f"note.mentioned:{note_id(page)}")
    assert other.evaluate("window.__beeps") >= 1
    other.locator(f'.conv-row[data-id="{conversation.pk}"]').click()
    expect(other.locator(".msg-note .msg-text")).to_contain_text("@colleague")
    expect(other.locator(".conv-row.active .row-preview")).to_have_text(
        "Note: VIP customer — @colleague can you check the refund?"
    )
    assert stack.sandbox.state()["messages"] == sent_before
    assert Message.objects.get(conversation=conversation, direction="note").status == ""


def note_id(page: Page) -> str:
    return page.locator(".msg-note").get_attribute("data-message-id")


def test_notes_are_allowed_when_the_reply_window_is_closed(stack, pages):
    stack.simulate_inbound("tt-late", "Hello?")
    conversation = stack.conversation("tt-late")
    type(conversation).objects.filter(pk=conversation.pk).update(last_inbound_at=timezone.now() - timedelta(hours=49))
    page = pages(stack, path=f"/c/{conversation.pk}/")
    expect(page.locator("#composer-lock")).to_contain_text("48-hour reply window closed")
    expect(page.locator("#composer-text")).to_be_disabled()
    page.click('.mode-button[data-mode="note"]')
    expect(page.locator("#composer-lock")).to_be_hidden()
    page.fill("#composer-text", "Customer came back too late, call them")
    page.click("#send-button")
    expect(page.locator(".msg-note .msg-text")).to_have_text("Customer came back too late, call them")


def test_the_composer_counts_characters_refuses_overlong_text_and_never_quotes_our_own_messages(stack, pages):
    stack.simulate_inbound("tt-quote", "Which colours do you have?")
    conversation = stack.conversation("tt-quote")
    assert stack.reply(conversation.pk, "Blue and red.").status_code == 201
    page = pages(stack, path=f"/c/{conversation.pk}/")
    expect(page.locator(".msg-out")).to_have_count(1)
    expect(page.locator(".msg-out .quote-button")).to_have_count(0)
    expect(page.locator(".msg-in .quote-button")).to_have_count(1)

    page.fill("#composer-text", "x" * 6001)
    counter = page.locator("#char-counter")
    expect(counter).to_have_attribute("data-state", "over")
    expect(counter).to_contain_text("6001 / 6000")
    expect(counter).to_contain_text("1 too many")
    expect(page.locator("#send-button")).to_be_disabled()
    page.press("#composer-text", "Enter")
    page.fill("#composer-text", "Is blue OK?")
    expect(counter).to_have_text("11 / 6000")

    # Quoting makes the reply text-only: the image button is off while the quote is set.
    page.locator(".msg-in").first.hover()
    page.locator(".msg-in .quote-button").click()
    expect(page.locator("#quote-chip")).to_be_visible()
    expect(page.locator("#image-input")).to_be_disabled()
    page.click("#quote-clear")
    expect(page.locator("#image-input")).to_be_enabled()
    assert Message.objects.filter(conversation=conversation, direction="out").count() == 1


def test_enter_pressed_twice_sends_one_reply(stack, pages):
    stack.simulate_inbound("tt-double", "Hello")
    conversation = stack.conversation("tt-double")
    page = pages(stack, path=f"/c/{conversation.pk}/")
    page.fill("#composer-text", "Only once, please")
    page.locator("#composer-text").press("Enter")
    page.locator("#composer-text").press("Enter", delay=0)
    expect(page.locator(".msg-out .msg-text")).to_have_text("Only once, please")
    expect(page.locator("#composer-text")).to_have_value("")
    expect(page.locator("#replies-left")).to_have_text("9 of 10 replies left")
    assert Message.objects.filter(conversation=conversation, direction="out").count() == 1


def test_assign_to_a_colleague_from_the_picker_reaches_them_live(stack, pages, django_user_model):
    colleague = django_user_model.objects.create_user("colleague", password="colleague-pass-1", first_name="Cleo")
    stack.inbox.members.add(colleague)
    stack.simulate_inbound("tt-assign", "Who can help me?")
    conversation = stack.conversation("tt-assign")
    page = pages(stack, path=f"/c/{conversation.pk}/")
    other = pages(stack, colleague, path="/")
    other.click('.tab[data-tab="mine"]')
    expect(other.locator("#list-empty")).to_be_visible()

    expect(page.locator("body")).to_have_attribute("data-thread-ready", str(conversation.pk))
    page.keyboard.press("Escape")  # out of the composer, which has the focus after opening
    page.keyboard.press("a")
    picker = page.locator("#assignee-select")
    expect(picker.locator("option", has_text="Cleo")).to_have_count(1)
    picker.select_option(label="Cleo")
    expect(page.locator("#thread-sub")).to_contain_text("Assigned to Cleo")
    expect(other.locator(f'.conv-row[data-id="{conversation.pk}"]')).to_be_visible()
    expect(other).to_have_url(stack.web_url + "/?tab=mine")  # the filter is in the address, bookmarkable


def test_keyboard_moves_through_the_list_resolves_and_shows_help_and_drafts_survive_a_reload(stack, pages):
    stack.simulate_inbound("tt-one", "first")
    stack.simulate_inbound("tt-two", "second")
    one, two = stack.conversation("tt-one"), stack.conversation("tt-two")
    page = pages(stack)
    expect(page.locator(".conv-row")).to_have_count(2)
    ready = page.locator("body")
    page.keyboard.press("j")
    expect(page).to_have_url(f"{stack.web_url}/c/{two.pk}/")
    expect(ready).to_have_attribute("data-thread-ready", str(two.pk))
    page.keyboard.press("j")  # walking the list leaves the focus out of the composer
    expect(page).to_have_url(f"{stack.web_url}/c/{one.pk}/")
    expect(ready).to_have_attribute("data-thread-ready", str(one.pk))
    page.keyboard.press("k")
    expect(page).to_have_url(f"{stack.web_url}/c/{two.pk}/")
    expect(ready).to_have_attribute("data-thread-ready", str(two.pk))
    expect(page.locator("#composer-text")).to_have_value("")
    page.keyboard.press("?")
    expect(page.locator("#help-overlay")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.locator("#help-overlay")).to_be_hidden()

    page.fill("#composer-text", "A draft for later")
    page.keyboard.press("e")  # typed into the composer: not a shortcut there
    expect(page.locator("#composer-text")).to_have_value("A draft for latere")
    page.keyboard.press("Backspace")
    page.keyboard.press("Escape")  # leaves the composer, so shortcuts work again
    page.keyboard.press("e")
    expect(page.locator("#thread-status")).to_have_text("resolved")
    page.reload()
    expect(page.locator("#composer-text")).to_have_value("A draft for later")


def test_desktop_screenshot_with_a_note(stack, pages):
    stack.simulate_inbound("mia.rose", "Hi! Is the denim jacket still available in size M? 🧥")
    mia = stack.conversation("mia.rose")
    stack.reply(mia.pk, "Yes! We have 3 left in M 😊")
    stack.simulate_inbound("jonas_k", "Do you ship to Berlin? 🇩🇪")
    stack.simulate_inbound("lea.m", "مرحبا، هل لديكم مقاس M؟ (size M?)")
    mia.labels.add(Label.objects.create(inbox=stack.inbox, name="VIP", color="#fe2c55"))
    Label.objects.create(inbox=stack.inbox, name="Wholesale", color="#25f4ee")
    page = pages(stack, path=f"/c/{mia.pk}/")
    page.click('.mode-button[data-mode="note"]')
    page.fill("#composer-text", "Reserved one in the back room for Friday.")
    page.click("#send-button")
    expect(page.locator(".msg-note")).to_have_count(1)
    page.click('.mode-button[data-mode="reply"]')
    page.fill("#composer-text", "See you on Friday!")
    # Unread conversations per view: jonas_k and lea.m are unread and unassigned; none is mine.
    expect(page.locator('.tab[data-tab="all"]')).to_have_attribute("data-unread", "2")
    expect(page.locator('.tab[data-tab="unassigned"]')).to_have_attribute("data-unread", "2")
    expect(page.locator('.tab[data-tab="mine"]')).to_have_attribute("data-unread", "0")
    shot(page, "inbox-desktop.png")


def test_snooze_sets_a_conversation_aside_and_the_customer_writing_reopens_it_for_everyone(
    stack, pages, django_user_model
):
    colleague = django_user_model.objects.create_user("colleague", password="colleague-pass-1")
    stack.inbox.members.add(colleague)
    stack.simulate_inbound("tt-later", "Call me back tomorrow")
    conversation = stack.conversation("tt-later")
    page = pages(stack, path=f"/c/{conversation.pk}/")
    other = pages(stack, colleague, path="/?status=pending")
    row = other.locator(f'.conv-row[data-id="{conversation.pk}"]')
    expect(other.locator('.seg[data-status="pending"]')).to_have_attribute("aria-pressed", "true")
    expect(row).to_have_count(0)

    page.select_option("#snooze-select", "tomorrow")
    expect(page.locator("#thread-status")).to_have_text("pending")
    expect(page.locator("#thread-sub")).to_contain_text("Snoozed until")
    expect(row.locator(".snooze-chip")).to_have_text("Snoozed")  # live, in the colleague's Pending list

    stack.simulate_inbound("tt-later", "Actually, now is fine")
    expect(row).to_have_count(0)  # reopened: it left Pending
    expect(page.locator("#thread-status")).to_have_text("open")
    other.click('.seg[data-status="open"]')
    expect(row).to_be_visible()


def test_labels_are_created_added_filtered_and_seen_live_by_a_colleague(stack, pages, django_user_model):
    colleague = django_user_model.objects.create_user("colleague", password="colleague-pass-1")
    stack.inbox.members.add(colleague)
    stack.simulate_inbound("tt-vip", "I ordered 40 jackets")
    stack.simulate_inbound("tt-plain", "Hello")
    vip = stack.conversation("tt-vip")
    page = pages(stack, path=f"/c/{vip.pk}/")
    other = pages(stack, colleague, path="/")

    page.fill("#new-label-name", "VIP")
    page.click("#new-label-form button[type=submit]")
    add = page.locator("#label-add")
    expect(add.locator("option", has_text="VIP")).to_have_count(1)
    add.select_option("VIP")
    expect(page.locator('#thread-labels .label-chip[data-label="VIP"]')).to_be_visible()
    other_row = other.locator(f'.conv-row[data-id="{vip.pk}"]')
    expect(other_row.locator('.label-chip[data-label="VIP"]')).to_be_visible()  # live on the colleague's list

    other.select_option("#label-filter", "VIP")
    expect(other.locator(".conv-row")).to_have_count(1)
    expect(other).to_have_url(stack.web_url + "/?label=VIP")

    page.locator('#thread-labels .label-chip[data-label="VIP"] .label-remove').click()
    expect(page.locator("#thread-labels .label-chip")).to_have_count(0)
    expect(other.locator(".conv-row")).to_have_count(0)  # no longer matches the colleague's filter


def test_canned_responses_are_saved_and_inserted_with_slash_arrows_and_enter(stack, pages):
    stack.simulate_inbound("mia.rose", "Do you ship to Vienna?")
    mia = stack.conversation("mia.rose")
    type(mia.contact).objects.filter(pk=mia.contact_id).update(display_name="Mia Rose")
    page = pages(stack, path=f"/c/{mia.pk}/")
    for code, text in [("shipping", "Hi {{contact.name}}, we ship across the EU in 2 days."), ("thanks", "Thanks!")]:
        page.fill("#new-canned-code", code)
        page.fill("#new-canned-text", text)
        page.click("#new-canned-form button[type=submit]")
        expect(page.locator("#canned-manager .canned-code", has_text="/" + code)).to_be_visible()

    composer = page.locator("#composer-text")
    composer.fill("")
    composer.type("/")
    picker = page.locator("#canned-picker")
    expect(picker.locator(".canned-option")).to_have_count(2)
    composer.type("sh")
    expect(picker.locator(".canned-option")).to_have_count(1)
    expect(picker.locator('.canned-option[aria-selected="true"] .canned-text')).to_have_text(
        "Hi Mia Rose, we ship across the EU in 2 days."
    )
    composer.press("Backspace")
    composer.press("Backspace")
    composer.press("ArrowDown")
    expect(picker.locator('.canned-option[aria-selected="true"] .canned-code')).to_have_text("/thanks")
    composer.press("ArrowUp")
    composer.press("Enter")  # inserts, does not send
    expect(composer).to_have_value("Hi Mia Rose, we ship across the EU in 2 days.")
    expect(picker).to_be_hidden()
    assert not Message.objects.filter(conversation=mia, direction="out").exists()
    composer.press("Enter")
    expect(page.locator(".msg-out .msg-text")).to_have_text("Hi Mia Rose, we ship across the EU in 2 days.")


def test_the_contact_is_edited_in_the_panel_and_a_colleague_sees_the_new_name_with_the_gallery(
    stack, pages, django_user_model
):
    colleague = django_user_model.objects.create_user("colleague", password="colleague-pass-1")
    stack.inbox.members.add(colleague)
    stack.simulate_inbound("tt-sam", "Here is the broken part")
    stack.simulate_inbound("tt-sam", image=f"{stack.web_url}/static/inbox/favicon.svg")
    sam = stack.conversation("tt-sam")
    page = pages(stack, path=f"/c/{sam.pk}/")
    other = pages(stack, colleague, path="/")
    expect(page.locator("#gallery .gallery-image")).to_have_count(1)

    page.click("#contact-edit")
    page.fill("#contact-display-name", "Sam Lee")
    page.fill("#contact-email", "sam@example.com")
    page.fill("#contact-notes", "Warranty until 2027")
    page.click("#attribute-add")
    page.locator(".attribute-key").last.fill("Order")
    page.locator(".attribute-value").last.fill("A-1042")
    page.click("#contact-form button[type=submit]")
    expect(page.locator("#contact-form")).to_be_hidden()
    facts = page.locator("#contact-facts")
    for text in ("sam@example.com", "Warranty until 2027", "Order", "A-1042"):
        expect(facts).to_contain_text(text)
    expect(page.locator("#thread-name")).to_have_text("Sam Lee")
    expect(other.locator(f'.conv-row[data-id="{sam.pk}"] .row-name')).to_have_text("Sam Lee")  # live
    assert type(sam.contact).objects.get(pk=sam.contact_id).attributes == {"Order": "A-1042"}


def test_the_slash_shortcut_opens_the_canned_picker_and_notifications_are_opt_in(stack, pages):
    stack.simulate_inbound("tt-slash", "Hi")
    conversation = stack.conversation("tt-slash")
    CannedResponse.objects.create(inbox=stack.inbox, short_code="hello", text="Hello {{contact.name}}!")
    page = pages(stack, path=f"/c/{conversation.pk}/")
    expect(page.locator("#notify-button")).to_be_visible()  # not asked yet: the agent may opt in
    expect(page.locator("body")).to_have_attribute("data-thread-ready", str(conversation.pk))
    page.keyboard.press("Escape")
    page.keyboard.press("/")
    expect(page.locator("#canned-picker .canned-text")).to_have_text("Hello tt-slash!")
    page.keyboard.press("Enter")
    expect(page.locator("#composer-text")).to_have_value("Hello tt-slash!")

    allowed = pages(stack, path="/", permissions=["notifications"])
    expect(allowed.locator("#notify-button")).to_be_hidden()  # already allowed: nothing to ask
