"""Drives the gateway's /docs page in headless Chromium to upload a file, as a person would:
opens one operation, fills in its path parameters, then either picks a file in the raw body's
file input, or switches the body to "form" and fills in the form's text and file inputs;
presses Send and waits for the answer. Prints one JSON object (the status line and the answer
text as the page shows them) for tests/docs_page.rs to check.

Usage: docs_upload.py DOCS_URL OPERATION_ID SPEC_JSON
SPEC_JSON: {"params": {name: value}, "file": PATH} for a raw upload, or
           {"params": {...}, "parts": {name: value}, "files": {name: PATH}} for a form.
"""
import json
import sys

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ready
from selenium.webdriver.support.ui import Select, WebDriverWait

WAIT_S = 20


def main() -> None:
    url, operation, spec = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    options = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-dev-shm-usage"):
        options.add_argument(flag)
    options.binary_location = "/usr/bin/chromium"
    driver = webdriver.Chrome(service=Service(executable_path="/usr/bin/chromedriver"), options=options)
    try:
        driver.get(url)
        wait = WebDriverWait(driver, WAIT_S)
        op = wait.until(ready.presence_of_element_located((By.ID, "op-" + operation)))
        driver.execute_script("arguments[0].open = true;", op)
        form = op.find_element(By.CSS_SELECTOR, "form.try")
        for name, value in spec.get("params", {}).items():
            field = form.find_element(By.CSS_SELECTOR, f"input[name='{name}']")
            field.clear()
            field.send_keys(value)
        if "file" in spec:
            form.find_element(By.CSS_SELECTOR, "input.try-file").send_keys(spec["file"])
        else:
            Select(form.find_element(By.CSS_SELECTOR, "select.try-kind")).select_by_value("form")
            for name, value in spec.get("parts", {}).items():
                field = form.find_element(By.CSS_SELECTOR, f"input[data-part='{name}']")
                field.send_keys(value)
            for name, path in spec.get("files", {}).items():
                form.find_element(By.CSS_SELECTOR, f"input[type=file][data-part='{name}']").send_keys(path)
        form.find_element(By.CSS_SELECTOR, "button.try-send").click()
        status = form.find_element(By.CSS_SELECTOR, ".try-status")
        wait.until(lambda _: status.text not in ("", "…"))
        result = form.find_element(By.CSS_SELECTOR, "pre.try-result")
        print(json.dumps({"status": status.text, "result": result.text}))
    finally:
        driver.quit()


if __name__ == "__main__":
    main()
