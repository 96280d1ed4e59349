"""Parses an SVG from stdin as XML and prints how many colours the report's
2-pixel lines have (each call's curve and its legend sample share one), then
every text element's content, one per line."""
import sys
import xml.etree.ElementTree as ElementTree

root = ElementTree.fromstring(sys.stdin.read())
colours = {
    element.get("stroke")
    for element in root.iter("{http://www.w3.org/2000/svg}polyline")
    if element.get("stroke-width") == "2"
}
print(len(colours))
for element in root.iter("{http://www.w3.org/2000/svg}text"):
    print((element.text or "").strip())
