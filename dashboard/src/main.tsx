import { render } from "preact";
import "uplot/dist/uPlot.min.css";
import "./style.css";
import { App } from "./app.tsx";

const root = document.getElementById("app");
if (root === null) throw new Error("dashboard: index.html has no #app element to render into");
render(<App />, root);
