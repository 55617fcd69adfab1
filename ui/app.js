// Placeholder of the server side (ui-server); the dashboard itself is ui-front's.
import { h, render } from 'preact';

render(h('p', null, 'Tagwarden dashboard'), document.getElementById('app'));
