import { render } from 'preact';
import { takeTokenFromLink } from './api.js';
import { App } from './app.js';
import './styles.css';

takeTokenFromLink();
render(<App />, document.getElementById('app')!);
